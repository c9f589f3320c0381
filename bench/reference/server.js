// The token server from OpenAI's Realtime WebRTC guide
// (https://platform.openai.com/docs/guides/realtime-webrtc), pointed at a local
// upstream: GET /session mints a client secret with the server's key and returns
// the JSON. One process, no authentication, no database: the reference a
// framework is compared with. 127.0.0.1 only.
//
//   UPSTREAM=http://127.0.0.1:PORT/v1 PORT=3000 node server.js
import express from "express";

const upstream = process.env.UPSTREAM ?? "https://api.openai.com/v1";
const apiKey = process.env.OPENAI_API_KEY ?? "sk-bench";
const port = Number(process.env.PORT ?? 3000);

const app = express();

const sessionConfig = JSON.stringify({
  session: {
    type: "realtime",
    model: "gpt-realtime",
    audio: { output: { voice: "marin" } },
  },
});

// An endpoint which would work with the client code above - it returns
// the contents of a REST API request to this protected endpoint
app.get("/session", async (req, res) => {
  try {
    const response = await fetch(`${upstream}/realtime/client_secrets`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${apiKey}`,
        "Content-Type": "application/json",
      },
      body: sessionConfig,
    });
    const data = await response.json();
    res.json(data);
  } catch (error) {
    console.error("Token generation error:", error);
    res.status(500).json({ error: "Failed to generate token" });
  }
});

app.listen(port, "127.0.0.1", () => {
  console.log(`listening on 127.0.0.1:${port}`);
});
