// The sign-in form (static in index.html): an API key, checked against the server before it
// is kept in localStorage.

import {api, describeError} from "../api.js";
import {clearKey, setKey} from "../auth.js";

/** Wires the form; `onSignedIn` runs once a key has been accepted. */
export function initLogin(onSignedIn) {
  const form = document.getElementById("login-form");
  const input = document.getElementById("login-key");
  const message = document.getElementById("login-message");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    setKey(key);
    try {
      await api.listQueues();
    } catch (err) {
      clearKey();
      message.textContent = err.status === 401 ? "That API key was refused." : describeError(err);
      return;
    }
    input.value = "";
    message.textContent = "";
    onSignedIn();
  });
}

/** Shows the form instead of the page, with an optional reason. */
export function showLogin(reason = "") {
  document.getElementById("view").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-message").textContent = reason;
  document.getElementById("login-key").focus();
}

export function hideLogin() {
  document.getElementById("login").hidden = true;
  document.getElementById("view").hidden = false;
}
