// Helper for tests/test_browser.py (not a test file): reads a recorded session as JSON
// on stdin ({schema, updates: [message, ...], uids?}), applies the updates to
// the JavaScript SDK's Replica (static/sdk/gameserver.js) and prints the view after each one
// (with `uids`: also each entity's uid by id, and the ids the update added and removed).
import { Replica } from "../../static/sdk/gameserver.js";

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const { schema, updates, uids } = JSON.parse(input);
  const replica = new Replica(schema);
  const views = updates.map((message) => {
    replica.apply(message);
    const out = { ack: replica.ack, tick: replica.tick, view: replica.view(), events: replica.events };
    if (uids) {
      out.uids = Object.fromEntries([...replica.entities.values()].map((e) => [e.id, e.uid]));
      out.added = replica.added.map((e) => e.id);
      out.removed = replica.removed.map((e) => e.id);
    }
    return out;
  });
  process.stdout.write(JSON.stringify(views));
});
