// Realtime load for scripts/bench (part 9): N sockets of supabase-js's realtime client
// (@supabase/realtime-js, what supabase.channel() runs), each joined to postgres_changes INSERTs
// on public.health_metrics with one user's token (tokens round-robin from a file, one per line).
//
//   node bench/realtime.js latency URL KEY TOKENS N SECONDS   → "subscribed N" then
//        "latency_ms p50 X p99 Y max Z events E": commit (the row's created_at) → callback
//   node bench/realtime.js idle URL KEY TOKENS N              → "subscribed N", then stays idle
//        until stdin closes (the caller reads the gateway's memory meanwhile)
import { readFileSync } from 'node:fs';
import { RealtimeClient } from '@supabase/realtime-js';
import WebSocket from 'ws';

const [mode, url, key, tokensFile, n, seconds] = process.argv.slice(2);
const tokens = readFileSync(tokensFile, 'utf8').split('\n').filter(Boolean);
const latencies = [];
const clients = [];

async function join(i) {
  const client = new RealtimeClient(`${url.replace(/^http/, 'ws')}/realtime/v1`, {
    transport: WebSocket, params: { apikey: key }, heartbeatIntervalMs: 25000,
  });
  client.setAuth(tokens[i % tokens.length]);
  clients.push(client);
  await new Promise((resolve, reject) => {
    client.channel(`bench-${i}`)
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'health_metrics' }, (c) => {
        latencies.push(Date.now() - Date.parse(c.new.created_at));
      })
      .subscribe((status, err) => {
        if (status === 'SUBSCRIBED') resolve();
        else if (status !== 'CLOSED') reject(err ?? new Error(status));
      });
  });
}

// Join with bounded concurrency (each join is a token check and a LISTEN in the gateway).
let next = 0;
await Promise.all(Array.from({ length: 32 }, async () => {
  while (next < Number(n)) await join(next++);
}));
console.log(`subscribed ${n}`);

if (mode === 'latency') {
  await new Promise((r) => setTimeout(r, Number(seconds) * 1000));
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  console.log(`latency_ms p50 ${q(0.5)} p99 ${q(0.99)} max ${q(1)} events ${latencies.length}`);
  process.exit(0);
} else {
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}
