// The wpaas JavaScript SDK: the app's data, as the module "wpaas".
//
//   import { kv, config } from "wpaas";
//
//   const bucket = kv.open("counter");          // wpaas kv:create counter -a APP
//   const visits = bucket.increment("visits");  // atomic over every instance
//   bucket.setJson("last", { path: url.pathname });
//   const greeting = config.get("GREETING", "Hello");
//
// The JavaScript buildpack bundles this file into every app that imports
// "wpaas" (esbuild --alias); it wraps wasi:keyvalue 0.2.0-draft and
// wasi:config 0.2.0-rc.1, which the app may also import directly. Use it in
// the handler: the bundle's top level runs once, when the component is
// built, where there is no data.

import { open as openBucket } from "wasi:keyvalue/store@0.2.0-draft";
import { increment as incrementKey } from "wasi:keyvalue/atomics@0.2.0-draft";
import { getMany, setMany, deleteMany } from "wasi:keyvalue/batch@0.2.0-draft";
import { get as getConfig, getAll as getAllConfig } from "wasi:config/store@0.2.0-rc.1";

/** A key-value operation failed; `message` says why. */
export class KvError extends Error {
  constructor(message) {
    super(message);
    this.name = "KvError";
  }
}

/** The bucket is not attached to the app (`wpaas kv:create`). */
export class NoSuchStore extends KvError {
  constructor(message = "no such bucket") {
    super(message);
    this.name = "NoSuchStore";
  }
}

/** The app may not use the bucket. */
export class AccessDenied extends KvError {
  constructor(message = "access denied") {
    super(message);
    this.name = "AccessDenied";
  }
}

/** The config could not be read; `message` says why. */
export class ConfigError extends Error {
  constructor(message) {
    super(message);
    this.name = "ConfigError";
  }
}

// An imported function's `err` is thrown as an error whose `payload` is the
// WIT variant: `{ tag: "no-such-store" }`, `{ tag: "other", val: "…" }`.
function kvCall(f) {
  try {
    return f();
  } catch (e) {
    const payload = e?.payload;
    switch (payload?.tag) {
      case "no-such-store":
        throw new NoSuchStore();
      case "access-denied":
        throw new AccessDenied();
      case "other":
        throw new KvError(String(payload.val));
      default:
        throw e;
    }
  }
}

function configCall(f) {
  try {
    return f();
  } catch (e) {
    if (e?.payload?.tag) {
      throw new ConfigError(String(e.payload.val));
    }
    throw e;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function bytes(value) {
  if (typeof value === "string") return encoder.encode(value);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer || Array.isArray(value)) return new Uint8Array(value);
  throw new TypeError("a value is a string or bytes (Uint8Array); use setJson for other values");
}

/** An open bucket (from `kv.open`). */
export class Bucket {
  #handle;

  constructor(name, handle) {
    /** The bucket's name. */
    this.name = name;
    this.#handle = handle;
  }

  /** The value of `key` as a Uint8Array, or undefined. */
  get(key) {
    return kvCall(() => this.#handle.get(key));
  }

  /** The value of `key` decoded as UTF-8, or undefined. */
  getText(key) {
    const value = this.get(key);
    return value === undefined ? undefined : decoder.decode(value);
  }

  /** The value of `key` parsed as JSON, or `fallback`. */
  getJson(key, fallback = undefined) {
    const value = this.getText(key);
    return value === undefined ? fallback : JSON.parse(value);
  }

  /** Stores `value` (a string, as UTF-8, or bytes) under `key`. */
  set(key, value) {
    kvCall(() => this.#handle.set(key, bytes(value)));
  }

  /** Stores `value` as JSON under `key`. */
  setJson(key, value) {
    this.set(key, JSON.stringify(value));
  }

  /** Removes `key` (nothing happens if it is not there). */
  delete(key) {
    kvCall(() => this.#handle.delete(key));
  }

  /** Whether `key` is there. */
  exists(key) {
    return kvCall(() => this.#handle.exists(key));
  }

  /**
   * Adds `delta` to the decimal number under `key` (absent: 0) atomically,
   * over every instance and replica; the new value (a number, or a BigInt
   * past Number.MAX_SAFE_INTEGER).
   */
  increment(key, delta = 1) {
    const n = kvCall(() => incrementKey(this.#handle, key, BigInt(delta)));
    return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
  }

  /** Every key, in byte order (all pages). */
  keys() {
    const keys = [];
    let cursor;
    do {
      const page = kvCall(() => this.#handle.listKeys(cursor));
      keys.push(...page.keys);
      cursor = page.cursor;
    } while (cursor !== undefined);
    return keys;
  }

  /** `{ key: Uint8Array }` for those of `keys` that are there. */
  getMany(keys) {
    const found = kvCall(() => getMany(this.#handle, [...keys]));
    return Object.fromEntries(found.filter((pair) => pair !== undefined));
  }

  /** Stores every `key: value` of the object `entries`, all or nothing. */
  setMany(entries) {
    const pairs = Object.entries(entries).map(([k, v]) => [k, bytes(v)]);
    kvCall(() => setMany(this.#handle, pairs));
  }

  /** Removes every key of `keys`, all or nothing. */
  deleteMany(keys) {
    kvCall(() => deleteMany(this.#handle, [...keys]));
  }
}

/** The app's key-value buckets (wasi:keyvalue). */
export const kv = {
  /**
   * The bucket `name`; throws NoSuchStore unless the app has attached it.
   * `open("")` is the bucket named `default`.
   */
  open(name) {
    return new Bucket(name, kvCall(() => openBucket(name)));
  },
  Bucket,
  KvError,
  NoSuchStore,
  AccessDenied,
};

/** The app's config vars (wasi:config): those of process.env, without DYNO. */
export const config = {
  /** The config var `key`, or `fallback`. */
  get(key, fallback = undefined) {
    const value = configCall(() => getConfig(key));
    return value === undefined ? fallback : value;
  },
  /** Every config var, as an object. */
  getAll() {
    return Object.fromEntries(configCall(() => getAllConfig()));
  },
  ConfigError,
};
