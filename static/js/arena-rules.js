// The arena's movement rule, as the client predicts it (with the SDK's Predictor). Pure.
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

/**
 * The SDK's prediction step for an Avatar: its state ({x, y, ...}), one input
 * [dx, dy] and the WELCOME config (step and rules). The Predictor passes a copy.
 */
export function step(avatar, [dx, dy], config) {
  [avatar.x, avatar.y] = move(avatar.x, avatar.y, dx, dy, config.step, config);
  return avatar;
}

/** Our own avatar in the room's state: the one whose pid is our player id. */
export function ownAvatar(room) {
  return room.state.ofType("Avatar").find((a) => a.values.pid === room.playerId);
}

/** Clamp and round a raw input vector to what the server accepts (ints in ±input_max). */
export function quantizeInput(dx, dy, inputMax) {
  const q = (v) => Math.max(-inputMax, Math.min(inputMax, Math.round(v * inputMax)));
  return [q(dx) || 0, q(dy) || 0]; // || 0: no -0 on the wire
}
