// Keyboard (WASD and arrows) and an on-screen analog stick for touch.
// direction() gives the input to send: [dx, dy], ints in -inputMax..inputMax.

import { quantizeInput } from "./arena-rules.js";

const KEYS = {
  KeyW: "up", ArrowUp: "up",
  KeyS: "down", ArrowDown: "down",
  KeyA: "left", ArrowLeft: "left",
  KeyD: "right", ArrowRight: "right",
};

function isTyping(target) {
  return target instanceof HTMLElement
    && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

export class Controls {
  /** stick: the stick's base element (containing a `.knob`), or null. */
  constructor(stick, inputMax = 100) {
    this.inputMax = inputMax;
    this.held = new Set();
    this.stickVec = null; // [x, y] in -1..1 while the stick is held
    this.stick = stick;
    this.knob = stick?.querySelector(".knob") ?? null;
    this.enabled = false;
    this._onKeyDown = (e) => this._key(e, true);
    this._onKeyUp = (e) => this._key(e, false);
    this._onBlur = () => this.release();
    window.addEventListener("keydown", this._onKeyDown);
    window.addEventListener("keyup", this._onKeyUp);
    window.addEventListener("blur", this._onBlur);
    if (stick) this._bindStick(stick);
  }

  release() {
    this.held.clear();
    this._stickEnd();
  }

  _key(e, down) {
    const dir = KEYS[e.code] ?? KEYS[e.key];
    if (!dir || !this.enabled) return;
    if (down && isTyping(e.target)) return; // typing in the chat box
    e.preventDefault(); // arrows must not scroll the page
    if (down) this.held.add(dir);
    else this.held.delete(dir);
  }

  _bindStick(stick) {
    let pointer = null;
    const update = (e) => {
      const box = stick.getBoundingClientRect();
      const radius = box.width / 2;
      let x = (e.clientX - (box.left + radius)) / radius;
      let y = (e.clientY - (box.top + radius)) / radius;
      const len = Math.hypot(x, y);
      if (len > 1) {
        x /= len;
        y /= len;
      }
      this.stickVec = len < 0.12 ? [0, 0] : [x, y]; // a small dead zone
      if (this.knob) {
        this.knob.style.transform = `translate(${x * radius * 0.6}px, ${y * radius * 0.6}px)`;
      }
    };
    stick.addEventListener("pointerdown", (e) => {
      if (!this.enabled) return;
      pointer = e.pointerId;
      stick.setPointerCapture(pointer);
      stick.classList.add("active");
      update(e);
      e.preventDefault();
    });
    stick.addEventListener("pointermove", (e) => {
      if (e.pointerId === pointer) update(e);
    });
    const end = (e) => {
      if (e.pointerId !== pointer) return;
      pointer = null;
      this._stickEnd();
    };
    stick.addEventListener("pointerup", end);
    stick.addEventListener("pointercancel", end);
  }

  _stickEnd() {
    this.stickVec = null;
    if (this.knob) this.knob.style.transform = "";
    this.stick?.classList.remove("active");
  }

  /** The current input, [dx, dy] as the server takes it. */
  direction() {
    if (!this.enabled) return [0, 0];
    if (this.stickVec) return quantizeInput(this.stickVec[0], this.stickVec[1], this.inputMax);
    const h = this.held;
    const x = (h.has("right") ? 1 : 0) - (h.has("left") ? 1 : 0);
    const y = (h.has("down") ? 1 : 0) - (h.has("up") ? 1 : 0);
    return [x * this.inputMax, y * this.inputMax];
  }
}
