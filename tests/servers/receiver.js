// A webhook receiver on Node's own `http` module, for tests/unit/test_real_servers.py.
// Listens on a free loopback port and prints it; serves the verification files of the JSON object
// in argv[2] (path -> contents) on GET, and answers POSTs by path: /hook with a Content-Length,
// /chunked in chunks, /close with `Connection: close`. Exits when its standard input closes.
"use strict";
const http = require("http");

const files = JSON.parse(process.argv[2] || "{}");
let posts = 0;

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    if (req.method === "GET") {
      if (req.url === "/posts") {
        res.end(String(posts));
      } else if (Object.prototype.hasOwnProperty.call(files, req.url)) {
        res.end(files[req.url]);
      } else {
        res.statusCode = 404;
        res.end("not found");
      }
      return;
    }
    posts += 1;
    if (req.url === "/chunked") {
      res.write("got ");
      res.end(`${body.length} bytes`);
    } else if (req.url === "/close") {
      res.setHeader("Connection", "close");
      res.end("closing");
    } else {
      res.end(`got ${body.length} bytes`);
    }
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
