// Helper for tests/test_sdk.py (not a test file): spectators of an arena room on a real
// server with the JavaScript SDK. Usage: node sdk-watch.mjs BASE_URL SDK_MODULE_PATH
// (the SDK as the server served it). Ann plays; Vic watches her room by id and Wes
// lets the server pick; Ann moves and chats; Vic's socket drops and he comes back with
// a new pass; Wes leaves. Prints what each saw as JSON.

import { pathToFileURL } from "node:url";

const [base, sdkPath] = process.argv.slice(2);
const { Client, MatchmakeError } = await import(pathToFileURL(sdkPath).href);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check, what, ms = 10000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const avatarOf = (room, pid) => room.state.ofType("Avatar").find((a) => a.values.pid === pid);
const listed = async (client, id) => (await client.listRooms("arena")).find((r) => r.room_id === id);

const client = new Client(base, { game: "arena" });
const ann = await client.create("arena", { name: "ann" });
await until(() => avatarOf(ann, ann.playerId), "ann's avatar");

const vic = await client.spectate(ann.id);
const wes = await new Client(base).spectate({ game: "arena" }); // the server picks: Ann's room
const seen = {
  vic: { spectator: vic.spectator, playerId: vic.playerId, id: vic.id, name: vic.name,
    token: vic.reconnectToken, xs: [], chat: [], errors: [], statuses: [], reconnected: [] },
  wes: { spectator: wes.spectator, id: wes.id },
  annId: ann.id,
};
vic.onChange("Avatar", (a) => {
  if (a.values.pid === ann.playerId) seen.vic.xs.push(a.values.x);
});
vic.onEvent("chat", ([, name, text]) => seen.vic.chat.push(`${name}: ${text}`));
vic.onError((code) => seen.vic.errors.push(code));
vic.onStatus((status) => seen.vic.statuses.push(status));
vic.onReconnect((info) => seen.vic.reconnected.push(info));
await until(() => avatarOf(vic, ann.playerId) && avatarOf(wes, ann.playerId), "the spectators see ann");
seen.vic.avatars = vic.state.ofType("Avatar").length;
seen.listedWatching = await listed(client, ann.id);

// Spectators cannot play: the SDK refuses at once, and the server refuses what gets through.
seen.vic.thrown = [];
for (const attempt of [() => vic.sendInput([100, 0]), () => vic.send("chat", "hi")]) {
  try {
    attempt();
  } catch (err) {
    seen.vic.thrown.push(err.message);
  }
}
vic._send([1, 1, [100, 0]]); // an INPUT anyway, bypassing the SDK's check
vic._send([2, "chat", "sneaky"]);
await until(() => seen.vic.errors.length === 2, "the server's two errors");

// Ann moves right for a while and chats; Vic sees it.
const startX = avatarOf(ann, ann.playerId).values.x;
for (let i = 0; i < 6; i++) {
  ann.sendInput([100, 0]);
  await sleep(50);
}
ann.sendInput(null); // let go (else the server repeats the last move for a late one)
ann.send("chat", "hello vic");
await until(() => seen.vic.chat.length === 1, "the chat");
await until(() => avatarOf(vic, ann.playerId).values.x === avatarOf(ann, ann.playerId).values.x
  && avatarOf(ann, ann.playerId).values.x !== startX, "vic sees ann's move");
seen.startX = startX;
seen.annX = avatarOf(ann, ann.playerId).values.x;

// Vic's connection breaks (as the network would: 1006): he spectates the room again.
const dropped = vic._ws;
const onclose = dropped.onclose;
dropped.onclose = null;
dropped.close();
onclose({ code: 1006, reason: "" });
await until(() => seen.vic.reconnected.length === 1, "vic back");
seen.vic.afterReconnect = { id: vic.id, playerId: vic.playerId, spectator: vic.spectator,
  status: vic.status };
await until(() => avatarOf(vic, ann.playerId), "ann after the reconnection");

wes.leave();
await sleep(300);
seen.listedAfterLeave = await listed(client, ann.id);
seen.wesStatus = wes.status;

try {
  await client.spectate("NOSUCHROOM");
  seen.noSuchRoom = "resolved";
} catch (err) {
  seen.noSuchRoom = err instanceof MatchmakeError ? err.code : String(err);
}

vic.leave();
ann.leave();
seen.statusAfter = [vic.status, ann.status];
console.log(JSON.stringify(seen));
process.exit(0);
