// The SQS emulator for BatchRunner's intake tests and benchmark, listening on 127.0.0.1 only. fauxqs's own
// command line listens on every interface; its buildApp gives the same server without that.
//
//   node tests/fauxqs/server.mjs [--port N]      (default 0: a free port)
//
// Prints one line, {"url":"http://127.0.0.1:PORT"}, once it accepts connections. It stops on SIGTERM or SIGINT,
// and when its standard input closes, so a test process that dies never leaves it behind.
import { buildApp } from "fauxqs";

const portArgument = process.argv.indexOf("--port");
const port = portArgument >= 0 ? Number(process.argv[portArgument + 1]) : 0;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port: expected a port number, got ${process.argv[portArgument + 1]}`);
  process.exit(2);
}

const app = buildApp({ logger: false, defaultRegion: "us-east-1" });
let stopping = false;
async function stop() {
  if (stopping) {
    return;
  }
  stopping = true;
  await app.close();
  process.exit(0);
}

process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();

await app.listen({ host: "127.0.0.1", port });
const { port: actual } = app.server.address();
console.log(JSON.stringify({ url: `http://127.0.0.1:${actual}` }));
