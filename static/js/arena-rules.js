// The arena's movement rule, as the client predicts it. Pure (no DOM).
//
// This is a line-for-line port of `move()` in gameserver/games/arena.py, the
// server's authoritative rule. The two MUST stay identical, or prediction
// drifts and every update corrects it: change both together. The constants
// (`rules`: width, height, player_radius, input_max; `step`: units per input)
// are not copied here; they come from the server's WELCOME config.
// tests/test_browser.py::test_move_matches_python checks both agree.

/**
 * Apply one input [dx, dy] to an integer position; returns [x, y] (integers).
 * A stick pushed less than input_max moves proportionally slower; diagonals are
 * normalised. Rounding is floor(v + 0.5), as on the server (Math.round differs
 * from Python's round() on halves, so neither is used).
 */
export function move(x, y, dx, dy, step, rules) {
  const length = Math.sqrt(dx * dx + dy * dy);
  if (length === 0) return [x, y];
  const scale = step / Math.max(length, rules.input_max);
  const r = rules.player_radius;
  const nx = x + Math.floor(dx * scale + 0.5);
  const ny = y + Math.floor(dy * scale + 0.5);
  return [Math.min(Math.max(nx, r), rules.width - r), Math.min(Math.max(ny, r), rules.height - r)];
}

/** Clamp and round a raw input vector to what the server accepts (ints in ±input_max). */
export function quantizeInput(dx, dy, inputMax) {
  const q = (v) => Math.max(-inputMax, Math.min(inputMax, Math.round(v * inputMax)));
  return [q(dx) || 0, q(dy) || 0]; // || 0: no -0 on the wire
}
