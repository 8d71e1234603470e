// Helper for tests/test_sdk.py (not a test file): two bots play arena on a real server
// with the JavaScript SDK. Usage: node sdk-play.mjs BASE_URL SDK_MODULE_PATH
// (the SDK as the server served it). Ann creates a room, predicts and moves right;
// Bob joins it by id and watches her; they chat; Bob leaves. Prints what each saw as JSON.

import { pathToFileURL } from "node:url";

import { move } from "../../static/js/arena-rules.js";

const [base, sdkPath] = process.argv.slice(2);
const { Client } = await import(pathToFileURL(sdkPath).href);

// The arena's rule as a step function: (entity state, input, config) -> entity state.
const step = (s, [dx, dy], config) => {
  const [x, y] = move(s.x, s.y, dx, dy, config.step, config);
  return { ...s, x, y };
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check, what, ms = 10000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const avatarOf = (room, pid) => room.state.ofType("Avatar").find((a) => a.values.pid === pid);

const client = new Client(base);
const ann = await client.create("arena", { name: "ann" });
ann.predict(step, { own: (room) => avatarOf(room, room.playerId) });
const annSaw = { added: [], removed: [], chat: [] };
ann.onAdd("Avatar", (a) => annSaw.added.push(a.values.name));
ann.onRemove("Avatar", (a) => annSaw.removed.push(a.values.name));
ann.onEvent("chat", ([, name, text]) => annSaw.chat.push(`${name}: ${text}`));

const bob = await new Client(base, { game: "arena" }).join(ann.id, { name: "bob" });
const bobSaw = { annXs: [], joined: [] };
bob.onChange("Avatar", (a, fields) => {
  if (a.values.pid === ann.playerId && fields.includes("x")) bobSaw.annXs.push(a.values.x);
});
bob.onEvent("joined", ([, name]) => bobSaw.joined.push(name));
const bobView = bob.interpolate({ filter: (e) => e.type === "Avatar" && e.values.pid !== bob.playerId });

await until(() => ann.predictor.ready && avatarOf(bob, ann.playerId), "both see ann");
const startX = ann.predictor.state.x;
const direction = startX < ann.config.width / 2 ? 100 : -100;
// Hold "right" (or left, away from the wall) for half a second, as a page would.
const held = Date.now();
while (Date.now() - held < 500) {
  ann.pumpInput([direction, 0]);
  await sleep(8);
}
const moves = ann.seq;
ann.pumpInput(null); // let go: one null input ends the stream
const sent = ann.seq;
await until(() => ann.pending.length === 0 && ann.state.ack === sent, "every input acknowledged");
const annServerX = avatarOf(ann, ann.playerId).values.x;
await until(() => avatarOf(bob, ann.playerId).values.x === annServerX, "bob sees ann's last move");
await sleep(300); // past the interpolation delay
const drawn = [...bobView.sample(performance.now()).values()].find((e) => e.pid === ann.playerId);

bob.send("chat", "hi ann");
await until(() => annSaw.chat.length > 0 && ann.rtt !== null && bob.rtt !== null, "chat and RTT");
bob.leave();
await until(() => annSaw.removed.includes("bob"), "ann sees bob leave");
const stats = ann.stats();
ann.leave();

console.log(JSON.stringify({
  room: ann.id, annId: ann.playerId, bobId: bob.playerId, inputs: moves, sent, step: ann.config.step,
  startX, direction, predictedX: ann.predictor.state.x, annServerX, corrections: ann.predictor.corrections,
  bobSawXs: bobSaw.annXs, bobJoined: bobSaw.joined, bobDrawnX: drawn?.x ?? null,
  annAdded: annSaw.added, annRemoved: annSaw.removed, chat: annSaw.chat,
  rttMs: stats.rttMs, updatesPerSec: stats.updatesPerSec, statusAfter: [ann.status, bob.status],
}));
