// accounts.js: what each module is charged for, for its `bytes` and `entries` quotas.
//
// An entry is charged to its last writer, an anonymous map to the module
// whose `new` made it (docs/abi.md "Limits and quotas"), so a module handed
// a map cannot spend its giver's quota.  When a module goes, what it is
// still charged for moves to the host's account, which has no quotas.

import { entrySize } from "./table.js";

export class Account {
  /** @param {string} label who is charged (a module's name, or "host") */
  constructor(label) {
    this.label = label;
    this.bytes = 0;
    this.entries = 0;
  }

  /** @param {number} bytes @param {number} entries */
  charge(bytes, entries) {
    this.bytes += bytes;
    this.entries += entries;
  }

  /** @param {number} bytes @param {number} entries */
  credit(bytes, entries) {
    this.bytes -= bytes;
    this.entries -= entries;
  }
}

/** Charge `account` for entry `e` as it now is; it becomes the entry's account. */
export function chargeEntry(
  /** @type {Account} */ account,
  /** @type {import("./table.js").Entry} */ e,
) {
  e.account = account;
  account.charge(entrySize(e), 1);
}

/** Give the entry's account back what `e`, as it now is, cost it. */
export function creditEntry(/** @type {import("./table.js").Entry} */ e) {
  e.account?.credit(entrySize(e), 1);
}
