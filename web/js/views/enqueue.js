// The enqueue form of a queue page: payload (JSON) and the optional job options of
// POST /api/queues/{q}/jobs.

import {api, describeError} from "../api.js";
import {h, jobHref, replace} from "../dom.js";

function field(label, input, hint) {
  return h("label", {class: "field"}, h("span", {}, label), input,
    hint ? h("small", {}, hint) : null);
}

export function createEnqueueForm(ctx, queue) {
  const payload = h("textarea", {name: "payload", rows: 4, spellcheck: false, required: true,
    value: '{"hello": "world"}'});
  const type = h("input", {name: "type", autocomplete: "off"});
  const priority = h("input", {name: "priority", type: "number", min: 0, max: 255, step: 1,
    placeholder: "0"});
  const delay = h("input", {name: "delay_ms", type: "number", min: 0, step: 1, placeholder: "0"});
  const attempts = h("input", {name: "max_attempts", type: "number", min: 1, step: 1,
    placeholder: "5"});
  const idempotency = h("input", {name: "idempotency_key", autocomplete: "off"});
  const result = h("p", {class: "form-result", role: "status"});

  async function submit(event) {
    event.preventDefault();
    let body;
    try {
      body = {payload: JSON.parse(payload.value)};
    } catch (err) {
      replace(result, h("span", {class: "error"}, `Payload is not JSON: ${err.message}`));
      return;
    }
    if (type.value.trim()) body.type = type.value.trim();
    for (const [name, input] of [["priority", priority], ["delay_ms", delay],
      ["max_attempts", attempts]]) {
      if (input.value !== "") body[name] = Number(input.value);
    }
    if (idempotency.value.trim()) body.idempotency_key = idempotency.value.trim();
    try {
      const created = await api.enqueue(queue, body);
      replace(result, created.duplicate ? "Duplicate of " : "Enqueued ",
        h("a", {href: jobHref(created.id)}, created.id),
        created.state ? ` (${created.state})` : "");
    } catch (err) {
      if (err.status === 401) ctx.fail(err);
      replace(result, h("span", {class: "error"}, describeError(err)));
    }
  }

  return h("form", {class: "enqueue", on: {submit}},
    field("Payload (JSON)", payload),
    h("div", {class: "row"},
      field("Type", type), field("Priority", priority, "0–255, higher first"),
      field("Delay (ms)", delay), field("Max attempts", attempts),
      field("Idempotency key", idempotency)),
    h("button", {type: "submit"}, "Enqueue"),
    result);
}
