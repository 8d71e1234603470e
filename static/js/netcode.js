// Client netcode: prediction + reconciliation of the player's own avatar, and
// interpolation of everything else. Pure: no DOM, no sockets, no clocks of its
// own (every time is passed in, in milliseconds), so it runs under `node --test`.
//
// Own avatar (Gambetta, "Client-side prediction and server reconciliation"):
// every input gets a sequence number and is applied locally at once with the
// same rule the server uses. Each update carries the server's position of our
// avatar and `ack`, the last input seq the server applied; the predicted
// position is rebuilt as server position + every input after `ack`. With
// identical rules that equals the old prediction; when it does not (the server
// refused or changed something), the difference is not snapped but kept as a
// visual offset that decays over `smoothMs`.
//
// Other entities (Source engine "entity interpolation"): rendered at
// `now - delayMs` on the server's tick timeline, between the two buffered
// states around that time.

/**
 * Predicts the player's own position from numbered inputs.
 * `moveFn(x, y, dx, dy)` is the game's movement rule (bound to its constants).
 */
export class Predictor {
  constructor(moveFn, { maxPending = 30, smoothMs = 100, snapDistance = 250 } = {}) {
    this.moveFn = moveFn;
    this.maxPending = maxPending; // never more unacked inputs than the server queues (32)
    this.smoothMs = smoothMs;
    this.snapDistance = snapDistance; // corrections beyond this (teleports) are not blended
    this.reset();
  }

  reset() {
    this.ready = false; // set by the first reconcile() that carries our avatar
    this.seq = 0;
    this.ack = 0;
    this.pending = []; // [{seq, dx, dy}], oldest first, all with seq > ack
    this.x = 0; // predicted position (exact integers, as the server will compute it)
    this.y = 0;
    this.prevX = 0; // position one input earlier, to draw the motion between inputs
    this.prevY = 0;
    this.offsetX = 0; // visual error still being blended out
    this.offsetY = 0;
    this.serverX = 0; // the last authoritative position seen
    this.serverY = 0;
    this.lastCorrection = 0; // size of the last correction, in units
    this.maxCorrection = 0;
    this.corrections = 0; // how many updates changed the prediction
  }

  /** Whether another input may be sent now (an avatar is known, the queue is not full). */
  canInput() {
    return this.ready && this.pending.length < this.maxPending;
  }

  /** Apply an input locally; returns its seq (to send), or 0 if it must not be sent. */
  applyInput(dx, dy) {
    if (!this.canInput()) return 0;
    const seq = ++this.seq;
    this.pending.push({ seq, dx, dy });
    this.prevX = this.x;
    this.prevY = this.y;
    [this.x, this.y] = this.moveFn(this.x, this.y, dx, dy);
    return seq;
  }

  /** A step passed without an input: the drawn motion ends at the predicted position. */
  hold() {
    this.prevX = this.x;
    this.prevY = this.y;
  }

  /**
   * The server refused input `seq` (ERROR with a seq): it will never be applied,
   * and a later ack passes over it, so stop predicting with it now.
   */
  refuse(seq) {
    this.pending = this.pending.filter((p) => p.seq !== seq);
  }

  /**
   * The server's state of our avatar after the inputs up to `ack`. Returns the
   * size of the correction it caused (0 when the prediction was right).
   */
  reconcile(serverX, serverY, ack) {
    this.serverX = serverX;
    this.serverY = serverY;
    if (!this.ready) {
      this.ready = true;
      this.ack = ack;
      this.seq = Math.max(this.seq, ack);
      this.pending = [];
      this.x = this.prevX = serverX;
      this.y = this.prevY = serverY;
      return 0;
    }
    if (ack > this.ack) this.ack = ack;
    let drop = 0;
    while (drop < this.pending.length && this.pending[drop].seq <= this.ack) drop++;
    if (drop) this.pending.splice(0, drop);
    let x = serverX;
    let y = serverY;
    for (const p of this.pending) [x, y] = this.moveFn(x, y, p.dx, p.dy);
    const cx = x - this.x;
    const cy = y - this.y;
    const size = Math.hypot(cx, cy);
    this.lastCorrection = size;
    if (size === 0) return 0;
    this.corrections++;
    if (size > this.maxCorrection) this.maxCorrection = size;
    this.x = x;
    this.y = y;
    this.prevX += cx;
    this.prevY += cy;
    if (size > this.snapDistance) {
      this.offsetX = this.offsetY = 0; // a teleport: blending would only smear it
    } else {
      this.offsetX -= cx; // keep the drawn position where it was; decay() removes it
      this.offsetY -= cy;
    }
    return size;
  }

  /** Blend the visual offset out: call once per rendered frame with the frame's dt. */
  decay(dtMs) {
    if (this.offsetX === 0 && this.offsetY === 0) return;
    const k = Math.exp(-Math.max(0, dtMs) / (this.smoothMs / 3)); // ~95% gone after smoothMs
    this.offsetX *= k;
    this.offsetY *= k;
    if (Math.abs(this.offsetX) < 0.05 && Math.abs(this.offsetY) < 0.05) {
      this.offsetX = this.offsetY = 0;
    }
  }

  /** Where to draw: between the last two predicted positions, plus the correction offset. */
  renderPosition(alpha) {
    const a = Math.min(1, Math.max(0, alpha));
    return [this.prevX + (this.x - this.prevX) * a + this.offsetX,
            this.prevY + (this.y - this.prevY) * a + this.offsetY];
  }
}

/**
 * Buffers server states and samples them `delayMs` in the past.
 *
 * Time base: every update has a tick; an update for tick t that arrives at
 * local time `a` gives the sample `a - t * tickMs`. The smallest recent sample
 * (the update that came quickest) maps ticks to local time; larger ones are
 * jitter, which the delay absorbs. The mapping slews slowly so render time
 * never jumps.
 */
export class Interpolator {
  constructor(tickMs, { delayMs = 2.5 * tickMs, maxStates = 40, windowMs = 2000 } = {}) {
    this.tickMs = tickMs;
    this.delayMs = delayMs;
    this.maxStates = maxStates;
    this.windowMs = windowMs;
    this.reset();
  }

  reset() {
    this.states = []; // [{tick, entities: Map<key, object with x, y>}], ascending tick
    this.samples = []; // [{at, offset}] for the clock mapping
    this.base = null; // local ms at tick 0
  }

  /** Add the state of one update: `entities` maps a stable key to {x, y, ...}. */
  push(tick, arrivalMs, entities) {
    let last = this.states[this.states.length - 1];
    if (last && tick < last.tick) {
      this.reset(); // the tick went back: another room (a reconnect) or a restarted server
      last = undefined;
    }
    if (last && tick === last.tick) last.entities = entities;
    else this.states.push({ tick, entities });
    if (this.states.length > this.maxStates) this.states.shift();

    const offset = arrivalMs - tick * this.tickMs;
    this.samples.push({ at: arrivalMs, offset });
    while (this.samples.length > 1 && arrivalMs - this.samples[0].at > this.windowMs) {
      this.samples.shift();
    }
    let target = Infinity;
    for (const s of this.samples) if (s.offset < target) target = s.offset;
    if (this.base === null || Math.abs(target - this.base) > 250) {
      this.base = target; // first update, or a long stall: re-anchor
    } else {
      const slew = 0.1 * this.tickMs; // at most 10% of a tick per update: 2% time warp
      this.base += Math.max(-slew, Math.min(slew, target - this.base));
    }
  }

  /** The (fractional) server tick that is shown at local time `nowMs`. */
  renderTick(nowMs) {
    if (this.base === null) return -1;
    return (nowMs - this.delayMs - this.base) / this.tickMs;
  }

  /** How far the newest buffered state is ahead of the render time, in ms (>0 is healthy). */
  bufferedMs(nowMs) {
    if (!this.states.length) return 0;
    return (this.states[this.states.length - 1].tick - this.renderTick(nowMs)) * this.tickMs;
  }

  /**
   * Entities at render time: a Map key -> object, x and y interpolated. An
   * entity is shown from the state it first appears in, until the state it is
   * gone from; past the newest state everything holds still (no extrapolation).
   */
  sample(nowMs) {
    const states = this.states;
    if (!states.length) return new Map();
    const rt = this.renderTick(nowMs);
    if (rt <= states[0].tick) return states[0].entities;
    const newest = states[states.length - 1];
    if (rt >= newest.tick) return newest.entities;
    let i = states.length - 2;
    while (i > 0 && states[i].tick > rt) i--;
    const a = states[i];
    const b = states[i + 1];
    const t = (rt - a.tick) / (b.tick - a.tick);
    const out = new Map();
    for (const [key, ea] of a.entities) {
      const eb = b.entities.get(key);
      if (eb === undefined) {
        out.set(key, ea);
      } else {
        out.set(key, { ...eb, x: ea.x + (eb.x - ea.x) * t, y: ea.y + (eb.y - ea.y) * t });
      }
    }
    return out;
  }
}

/** Events or bytes per second over a sliding window. */
export class RateCounter {
  constructor(windowMs = 1000) {
    this.windowMs = windowMs;
    this.items = []; // [time, amount]
    this.total = 0;
  }

  add(nowMs, amount = 1) {
    this.items.push([nowMs, amount]);
    this.total += amount;
    this._trim(nowMs);
  }

  rate(nowMs) {
    this._trim(nowMs);
    return (this.total * 1000) / this.windowMs;
  }

  _trim(nowMs) {
    const items = this.items;
    let n = 0;
    while (n < items.length && nowMs - items[n][0] >= this.windowMs) {
      this.total -= items[n][1];
      n++;
    }
    if (n) items.splice(0, n);
  }
}

/**
 * A fixed-step clock: `advance(now)` returns how many steps are due (at most
 * `maxSteps`; the rest is dropped, no spiral of death). `alpha(now)` is the
 * fraction of the current step that has passed.
 */
export class StepClock {
  constructor(stepMs, maxSteps = 3) {
    this.stepMs = stepMs;
    this.maxSteps = maxSteps;
    this.last = null;
  }

  /** Start a step now (e.g. on a key press after idling, for an immediate response). */
  restart(nowMs) {
    this.last = nowMs;
  }

  advance(nowMs) {
    if (this.last === null) {
      this.last = nowMs;
      return 0;
    }
    let steps = Math.floor((nowMs - this.last) / this.stepMs);
    if (steps <= 0) return 0;
    if (steps > this.maxSteps) {
      this.last = nowMs - this.stepMs * this.maxSteps;
      steps = this.maxSteps;
    }
    this.last += steps * this.stepMs;
    return steps;
  }

  alpha(nowMs) {
    if (this.last === null) return 1;
    return Math.min(1, Math.max(0, (nowMs - this.last) / this.stepMs));
  }
}
