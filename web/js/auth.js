// The API key, kept in this browser's localStorage (per origin) until the user signs out.

const STORAGE_KEY = "relayq.apiKey";

export function getKey() {
  try {
    return localStorage.getItem(STORAGE_KEY) || "";
  } catch {
    return ""; // storage disabled: work without a key (a server with --auth off)
  }
}

export function setKey(key) {
  localStorage.setItem(STORAGE_KEY, key);
}

export function clearKey() {
  localStorage.removeItem(STORAGE_KEY);
}
