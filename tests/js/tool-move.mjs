// Helper for tests/test_browser.py (not a test file): reads [[x, y, dx, dy, step], ...]
// and rules as JSON on stdin, prints the results of static/js/arena-rules.js move().
import { move } from "../../static/js/arena-rules.js";

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const { rules, cases } = JSON.parse(input);
  const out = cases.map(([x, y, dx, dy, step]) => move(x, y, dx, dy, step, rules));
  process.stdout.write(JSON.stringify(out));
});
