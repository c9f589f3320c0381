// The upstream stub of stub_upstream.py in Node's own http module: the same answers
// and control endpoints (GET /_bench/stats, POST /_bench/latency?seconds=S), at a
// fraction of the CPU, so that at 200 clients x 300 ms the upstream is never what
// limits the server under test. 127.0.0.1 only.
//
//   node bench/stub_upstream.mjs PORT LATENCY_SECONDS
import http from "node:http";

const port = Number(process.argv[2]);
let latency = Number(process.argv[3] ?? 0);
let requests = 0;
const byTag = {};
const EXPIRES_AT = 1893456000;
const headers = { "content-type": "application/json", "x-request-id": "req_bench" };

function secretBody(posted) {
  let session = {};
  try {
    session = JSON.parse(posted || "{}").session ?? {};
  } catch {
    session = {};
  }
  session = { id: "sess_bench", object: "realtime.session", ...session };
  return JSON.stringify({ value: "ek_bench", expires_at: EXPIRES_AT, session });
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const url = new URL(req.url, "http://127.0.0.1");
    if (url.pathname === "/_bench/stats") {
      res.writeHead(200, headers).end(JSON.stringify({ requests, by_tag: byTag }));
      return;
    }
    if (url.pathname === "/_bench/latency") {
      latency = Number(url.searchParams.get("seconds") ?? 0);
      res.writeHead(200, headers).end(JSON.stringify({ latency }));
      return;
    }
    const body = secretBody(Buffer.concat(chunks).toString());
    const reply = () => {
      requests += 1;
      const parts = url.pathname.split("/");
      const tag = parts.length > 2 ? parts[1] : "";
      byTag[tag] = (byTag[tag] ?? 0) + 1;
      res.writeHead(200, headers).end(body);
    };
    if (latency > 0) setTimeout(reply, latency * 1000);
    else reply();
  });
});
// Idle keep-alive connections stay open for the whole benchmark: a server measured
// after a pause must not race the stub's close (a ReadError, not the server's fault).
server.keepAliveTimeout = 900_000;
server.headersTimeout = 901_000;
server.requestTimeout = 0;
server.listen(port, "127.0.0.1", 2048);
