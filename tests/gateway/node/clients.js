// What ioredis users do, against the relayq RESP gateway (run by tests/gateway/test_ioredis.py):
// connect with a password, pipeline pushes, block on a pop that another client's push wakes,
// consume a stream with a group and ack. Prints one JSON object with what it saw.
// Usage: node clients.js PORT KEY QUEUE
const Redis = require("ioredis");

async function main() {
  const [port, key, queue] = process.argv.slice(2);
  const options = { port: Number(port), host: "127.0.0.1", password: key,
                    maxRetriesPerRequest: 0 };
  const producer = new Redis(options);
  const consumer = new Redis(options);
  const seen = {};

  const pipeline = producer.pipeline();
  for (let i = 0; i < 20; i++) pipeline.lpush(queue, JSON.stringify({ n: i }));
  seen.pushes = (await pipeline.exec()).map(([err, count]) => (err ? String(err) : count));
  seen.llen = await producer.llen(queue);
  seen.popped = await consumer.rpop(queue, 20);

  // a blocked pop, woken by the other connection's push
  const waiting = consumer.brpop(queue, 20);
  const blockedAt = Date.now();
  setTimeout(() => producer.lpush(queue, "wake up"), 300);
  seen.brpop = await waiting;
  seen.brpopMs = Date.now() - blockedAt;

  const stream = `${queue}-events`;
  seen.group = await producer.xgroup("CREATE", stream, "workers", "$", "MKSTREAM");
  seen.ids = [];
  for (const item of ["book", "pen"]) seen.ids.push(await producer.xadd(stream, "*", "item", item));
  seen.read = await consumer.xreadgroup("GROUP", "workers", "node-1", "COUNT", 10, "BLOCK", 1000,
                                        "STREAMS", stream, ">");
  seen.pending = await consumer.xpending(stream, "workers");
  seen.acked = await consumer.xack(stream, "workers", ...seen.ids);
  seen.after = await consumer.xpending(stream, "workers");
  try {
    await consumer.call("NOSUCH", "x");
  } catch (err) {
    seen.unknown = err.message;
  }
  seen.ping = await consumer.ping();
  producer.disconnect();
  consumer.disconnect();
  console.log(JSON.stringify(seen));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
