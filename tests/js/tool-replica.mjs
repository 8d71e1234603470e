// Helper for tests/test_browser.py (not a test file): reads a recorded session as JSON
// on stdin ({schema, updates: [message, ...]}), applies the updates to
// the JavaScript SDK's Replica (static/sdk/gameserver.js) and prints the view after each one.
import { Replica } from "../../static/sdk/gameserver.js";

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const { schema, updates } = JSON.parse(input);
  const replica = new Replica(schema);
  const views = updates.map((message) => {
    replica.apply(message);
    return { ack: replica.ack, tick: replica.tick, view: replica.view(), events: replica.events };
  });
  process.stdout.write(JSON.stringify(views));
});
