// Draws the arena on a canvas that fills its container, keeping the world's
// aspect ratio (letterboxed) and the device's pixel ratio. Text is sized in
// screen pixels so names stay legible at any zoom. The camera shows the whole
// field, or (a spectator following a player: scene.focus) a point at FOLLOW_ZOOM,
// kept inside the field; it eases between the two in EASE_MS. In the large world
// (scene.view) the camera follows the player's own avatar, showing about PLAYER_VIEW
// world units, with a minimap of the whole field in a corner (minimap.js).

import { drawMinimap, minimapBox } from "./minimap.js";

export const FOLLOW_ZOOM = 2;
/** The large world's camera: about this much of the field is shown around the player. */
export const PLAYER_VIEW = Object.freeze({ width: 1600, height: 900 });
const EASE_MS = 250;
const PAD = 16;
/** Avatars are never drawn smaller than this radius (CSS px): a phone shows the whole field small. */
export const MIN_AVATAR_R = 6;

export function playerColor(pid) {
  const hue = (pid * 137.508 + 190) % 360;
  return `hsl(${hue.toFixed(1)} 72% 62%)`;
}

export class Renderer {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.cssW = 0;
    this.cssH = 0;
    this.dpr = 1;
    this.camera = null; // as last drawn: {x, y} the world point at the centre, zoom (1 = fit)
    this.cameraKey = null; // what the camera is on (the focus's key), null for the whole field
    this.easeFrom = null; // the camera an ease started from
    this.easeStart = 0;
    this.hits = []; // the avatars as last drawn: [{pid, x, y}] in CSS pixels
    this.hitR = 0;
    this.viewport = null; // the part of the field in view, in world units {x0, y0, x1, y1}
    this.minimap = null; // what the minimap showed last frame (minimap.js), or null
    this.avatarR = 0; // the avatars' radius as last drawn, CSS px
  }

  /** The camera zoom (1 = the whole field) that shows `view` {width, height} units. */
  viewZoom(view) {
    const scale = Math.min((this.cssW - 2 * PAD) / view.width, (this.cssH - 2 * PAD) / view.height);
    return Math.max(1, scale / this.fitScale);
  }

  _fit(world) {
    const canvas = this.canvas;
    const box = canvas.parentElement.getBoundingClientRect();
    const dpr = Math.min(window.devicePixelRatio || 1, 3);
    const w = Math.max(1, Math.floor(box.width));
    const h = Math.max(1, Math.floor(box.height));
    if (w !== this.cssW || h !== this.cssH || dpr !== this.dpr) {
      this.cssW = w;
      this.cssH = h;
      this.dpr = dpr;
      canvas.width = Math.floor(w * dpr);
      canvas.height = Math.floor(h * dpr);
      canvas.style.width = `${w}px`;
      canvas.style.height = `${h}px`;
    }
    const pad = PAD;
    const scale = Math.max(0.05, Math.min((w - 2 * pad) / world.width, (h - 2 * pad) / world.height));
    this.fitScale = scale;
    this.scale = scale;
    this.ox = (w - world.width * scale) / 2;
    const spare = h - world.height * scale;
    // Tall screens (phones held upright): the field goes to the top, leaving the
    // space below it for the touch stick instead of covering the field with it.
    this.oy = spare > 150 ? pad : spare / 2;
  }

  /** Where a camera at `zoom` may centre without showing more than PAD beyond the field. */
  bounds(world, zoom) {
    const s = this.fitScale * zoom;
    const axis = (size, screen) => {
      const half = screen / 2 / s;
      const pad = PAD / s;
      if (2 * half >= size + 2 * pad) return [size / 2, size / 2]; // it all fits: centred
      return [half - pad, size - half + pad];
    };
    const [minX, maxX] = axis(world.width, this.cssW);
    const [minY, maxY] = axis(world.height, this.cssH);
    return { minX, maxX, minY, maxY };
  }

  /** Place the camera for this frame: the whole field, or `focus` {key, x, y} followed. */
  _aim(world, focus, now, zoom = FOLLOW_ZOOM) {
    const fit = { x: (this.cssW / 2 - this.ox) / this.fitScale,
      y: (this.cssH / 2 - this.oy) / this.fitScale, zoom: 1 };
    let target = fit;
    if (focus) {
      const b = this.bounds(world, zoom);
      target = { x: Math.min(Math.max(focus.x, b.minX), b.maxX),
        y: Math.min(Math.max(focus.y, b.minY), b.maxY), zoom };
    }
    const key = focus ? focus.key : null;
    if (key !== this.cameraKey) {
      this.cameraKey = key;
      this.easeFrom = this.camera;
      this.easeStart = now;
    }
    let cam = target;
    if (this.easeFrom) {
      const t = (now - this.easeStart) / EASE_MS;
      if (t >= 1 || !(t >= 0)) {
        this.easeFrom = null;
      } else {
        const e = 1 - (1 - t) ** 3; // ease-out
        const from = this.easeFrom;
        cam = { x: from.x + (target.x - from.x) * e, y: from.y + (target.y - from.y) * e,
          zoom: from.zoom + (target.zoom - from.zoom) * e };
      }
    }
    this.camera = cam;
    if (cam === fit) return; // the whole field: the fit's own offsets, exactly
    this.scale = this.fitScale * cam.zoom;
    this.ox = this.cssW / 2 - cam.x * this.scale;
    this.oy = this.cssH / 2 - cam.y * this.scale;
  }

  /** The pid of the avatar drawn at (x, y) (CSS pixels in the canvas), the nearest; or null. */
  pick(x, y) {
    let best = null;
    let bestD = this.hitR;
    for (const h of this.hits) {
      const d = Math.hypot(h.x - x, h.y - y);
      if (d <= bestD) {
        best = h.pid;
        bestD = d;
      }
    }
    return best;
  }

  /**
   * scene: {world: {width, height, player_radius, orb_radius, interest_cell?}, orbs: [{x, y}],
   *   avatars: [{pid, name, score, x, y, own, followed}], raw: [{x, y, own}] | null,
   *   focus: {key, x, y} | null (the point followed, else the whole field), now (ms),
   *   view: {width, height} | null (follow the focus showing that many units, else
   *   FOLLOW_ZOOM), minimap: {interest} | null (draw the minimap, with that interest area)}
   */
  draw(scene) {
    const { world } = scene;
    this._fit(world);
    const zoom = scene.view ? this.viewZoom(scene.view) : FOLLOW_ZOOM;
    this._aim(world, scene.focus ?? null, scene.now ?? performance.now(), zoom);
    const ctx = this.ctx;
    const s = this.scale;
    const X = (x) => this.ox + x * s;
    const Y = (y) => this.oy + y * s;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.cssW, this.cssH);
    const view = { // the part of the field on the canvas
      x0: Math.max(0, -this.ox / s), y0: Math.max(0, -this.oy / s),
      x1: Math.min(world.width, (this.cssW - this.ox) / s),
      y1: Math.min(world.height, (this.cssH - this.oy) / s),
    };
    this.viewport = view;

    // The field.
    ctx.fillStyle = "#0f1626";
    ctx.strokeStyle = "#2a3a5c";
    ctx.lineWidth = 2;
    roundRect(ctx, X(0), Y(0), world.width * s, world.height * s, 10);
    ctx.fill();
    ctx.stroke();
    ctx.save();
    roundRect(ctx, X(0), Y(0), world.width * s, world.height * s, 10);
    ctx.clip();
    // The grid (the lines in view only: the large field has hundreds), and in the large
    // world the interest cells' edges a little brighter, so that motion shows.
    const grid = (step, style) => {
      ctx.strokeStyle = style;
      ctx.lineWidth = 1;
      ctx.beginPath();
      for (let gx = Math.max(step, Math.ceil(view.x0 / step) * step); gx <= view.x1 && gx < world.width; gx += step) {
        ctx.moveTo(Math.round(X(gx)) + 0.5, Y(view.y0));
        ctx.lineTo(Math.round(X(gx)) + 0.5, Y(view.y1));
      }
      for (let gy = Math.max(step, Math.ceil(view.y0 / step) * step); gy <= view.y1 && gy < world.height; gy += step) {
        ctx.moveTo(X(view.x0), Math.round(Y(gy)) + 0.5);
        ctx.lineTo(X(view.x1), Math.round(Y(gy)) + 0.5);
      }
      ctx.stroke();
    };
    grid(100, "rgba(120, 150, 200, 0.07)");
    if (world.interest_cell) grid(world.interest_cell, "rgba(120, 150, 200, 0.2)");

    // Orbs.
    const orbR = Math.max(2.5, world.orb_radius * s);
    ctx.fillStyle = "rgba(251, 191, 36, 0.18)";
    ctx.beginPath();
    for (const o of scene.orbs) {
      ctx.moveTo(X(o.x) + orbR * 2, Y(o.y));
      ctx.arc(X(o.x), Y(o.y), orbR * 2, 0, Math.PI * 2);
    }
    ctx.fill();
    ctx.fillStyle = "#fbbf24";
    ctx.beginPath();
    for (const o of scene.orbs) {
      ctx.moveTo(X(o.x) + orbR, Y(o.y));
      ctx.arc(X(o.x), Y(o.y), orbR, 0, Math.PI * 2);
    }
    ctx.fill();

    // Raw server positions (the H toggle): hollow dashed rings.
    const pr = Math.max(MIN_AVATAR_R, world.player_radius * s);
    this.avatarR = pr;
    if (scene.raw) {
      ctx.setLineDash([4, 4]);
      ctx.lineWidth = 1.5;
      for (const r of scene.raw) {
        ctx.strokeStyle = r.own ? "#f472b6" : "#38bdf8";
        ctx.beginPath();
        ctx.arc(X(r.x), Y(r.y), pr, 0, Math.PI * 2);
        ctx.stroke();
      }
      ctx.setLineDash([]);
    }

    // Avatars: others first, our own (or the followed one) on top.
    const top = (a) => (a.own || a.followed ? 1 : 0);
    const avatars = [...scene.avatars].sort((a, b) => top(a) - top(b));
    this.hits = avatars.map((a) => ({ pid: a.pid, x: X(a.x), y: Y(a.y) }));
    this.hitR = Math.max(pr + 6, 18);
    for (const a of avatars) {
      const cx = X(a.x);
      const cy = Y(a.y);
      if (a.followed) {
        ctx.beginPath();
        ctx.arc(cx, cy, pr + 6, 0, Math.PI * 2);
        ctx.lineWidth = 3;
        ctx.strokeStyle = FOLLOWED;
        ctx.stroke();
      }
      // A dropped player (its seat kept for a reconnection) is drawn dimmed, dashed.
      ctx.globalAlpha = a.away ? 0.35 : 1;
      ctx.beginPath();
      ctx.arc(cx, cy, pr, 0, Math.PI * 2);
      ctx.fillStyle = playerColor(a.pid);
      ctx.fill();
      ctx.lineWidth = a.own ? 3 : 2;
      ctx.strokeStyle = a.own ? "#ffffff" : "rgba(8, 12, 22, 0.75)";
      if (a.away) {
        ctx.setLineDash([3, 3]);
        ctx.strokeStyle = "#e2e8f0";
      }
      ctx.stroke();
      ctx.setLineDash([]);
      if (pr >= 9) {
        ctx.fillStyle = "#0b1020";
        ctx.font = `700 ${Math.round(Math.min(16, pr * 0.9))}px ${FONT}`;
        ctx.textAlign = "center";
        ctx.textBaseline = "middle";
        ctx.fillText(String(a.score), cx, cy + 0.5);
      }
      ctx.globalAlpha = 1;
    }
    ctx.restore();

    if (scene.raw) {
      ctx.font = `500 12px ${FONT}`;
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      ctx.fillStyle = "rgba(220, 230, 245, 0.8)";
      ctx.fillText("Dashed rings: newest server positions (yours pink, others blue)",
        X(0) + 10, Y(0) + 8);
    }

    // Names above everything, in screen pixels, with an outline for contrast.
    ctx.font = `600 13px ${FONT}`;
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    ctx.lineJoin = "round";
    for (const a of avatars) {
      const label = a.own ? `${a.name} (you)` : a.name;
      const tx = X(a.x);
      const ty = Y(a.y) - pr - (a.followed ? 11 : 5);
      ctx.font = `${a.followed ? 800 : 600} 13px ${FONT}`;
      ctx.lineWidth = 4;
      ctx.strokeStyle = "rgba(8, 12, 22, 0.9)";
      ctx.strokeText(label, tx, ty);
      ctx.fillStyle = a.followed ? FOLLOWED : a.own ? "#ffffff" : "#dbe4f3";
      ctx.fillText(label, tx, ty);
      if (a.away) {
        ctx.font = `italic 600 11px ${FONT}`;
        ctx.textBaseline = "top";
        const by = Y(a.y) + pr + 4;
        ctx.strokeText("reconnecting…", tx, by);
        ctx.fillStyle = "#fbbf24";
        ctx.fillText("reconnecting…", tx, by);
        ctx.textBaseline = "bottom";
      }
    }

    // The minimap, over everything.
    this.minimap = null;
    if (scene.minimap) {
      ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
      this.minimap = drawMinimap(ctx, minimapBox(this.cssW, this.cssH, world), world, {
        orbs: scene.orbs,
        avatars: scene.avatars,
        interest: scene.minimap.interest ?? null,
        viewport: view,
      }, playerColor);
    }
  }
}

const FOLLOWED = "#2dd4bf"; // the followed avatar's ring and name (the theme's accent)

const FONT = 'Inter, "Segoe UI", system-ui, -apple-system, Roboto, "Helvetica Neue", Arial, sans-serif';

function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.moveTo(x + r, y);
  ctx.arcTo(x + w, y, x + w, y + h, r);
  ctx.arcTo(x + w, y + h, x, y + h, r);
  ctx.arcTo(x, y + h, x, y, r);
  ctx.arcTo(x, y, x + w, y, r);
  ctx.closePath();
}
