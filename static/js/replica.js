// A client's copy of a room's world, rebuilt from snapshots and deltas. Pure (no DOM).
//
// Port of gameserver/replica.py, the reference decoder of the update messages
// described in docs/PROTOCOL.md; keep the two the same algorithm.
//
//   SNAPSHOT [11, ack, tick, entities_flat, events]
//   DELTA    [12, ack, tick, base_tick, created_flat, changed_flat, removed_ids, events]
//
// entity record (snapshot, created): id, type_index, v0..vn (absolute values)
// change record: id, mask, one value per set bit; "i" fields are differences.
//
// Entity ids are reused by the server once freed, so every entity created here
// also gets a `uid` unique within this replica: interpolation keys on it, so a
// removed player's id reused by a new orb is never blended into it.

export const S_SNAPSHOT = 11;
export const S_DELTA = 12;

export class ReplicaError extends Error {}

export class Replica {
  /** @param {Array} schema [[type_name, [[field, kind], ...]], ...] from WELCOME */
  constructor(schema) {
    this.schema = schema;
    this.types = schema.map(([name, fields]) => ({
      name,
      fields: fields.map(([f]) => f),
      kinds: fields.map(([, k]) => k),
    }));
    this.tick = -1;
    this.ack = 0;
    /** @type {Map<number, {id:number, type:string, typeIndex:number, uid:number, values:Object}>} */
    this.entities = new Map();
    this.events = [];
    this._uid = 0;
  }

  /** Apply one decoded snapshot or delta message (an array). */
  apply(message) {
    const kind = message[0];
    if (kind === S_SNAPSHOT) {
      const [, ack, tick, records, events] = message;
      this.ack = ack;
      this.tick = tick;
      this.entities = new Map();
      this._create(records);
      this.events = events;
    } else if (kind === S_DELTA) {
      const [, ack, tick, base, created, changed, removed, events] = message;
      if (base !== this.tick) {
        throw new ReplicaError(`delta from tick ${base} applied to tick ${this.tick}`);
      }
      this.ack = ack;
      this.tick = tick;
      for (const id of removed) {
        if (!this.entities.delete(id)) throw new ReplicaError(`removed unknown entity ${id}`);
      }
      this._create(created);
      this._change(changed);
      this.events = events;
    } else {
      throw new ReplicaError(`not an update message: kind ${kind}`);
    }
  }

  _create(records) {
    const n = records.length;
    let i = 0;
    while (i < n) {
      const id = records[i];
      const typeIndex = records[i + 1];
      const type = this.types[typeIndex];
      if (type === undefined) throw new ReplicaError(`unknown entity type ${typeIndex}`);
      const end = i + 2 + type.fields.length;
      if (end > n) throw new ReplicaError(`truncated entity record for ${id}`);
      const values = {};
      for (let f = 0; f < type.fields.length; f++) values[type.fields[f]] = records[i + 2 + f];
      this.entities.set(id, { id, type: type.name, typeIndex, uid: ++this._uid, values });
      i = end;
    }
  }

  _change(records) {
    const n = records.length;
    let i = 0;
    while (i < n) {
      const id = records[i];
      let mask = records[i + 1];
      i += 2;
      const entity = this.entities.get(id);
      if (entity === undefined) throw new ReplicaError(`changed unknown entity ${id}`);
      const { fields, kinds } = this.types[entity.typeIndex];
      let bit = 0;
      while (mask) {
        if (mask & 1) {
          if (bit >= fields.length || i >= n) throw new ReplicaError(`bad change record for ${id}`);
          const name = fields[bit];
          const value = records[i++];
          entity.values[name] = kinds[bit] === "i" ? entity.values[name] + value : value;
        }
        mask = Math.floor(mask / 2); // not >>: masks of 32+ fields stay exact
        bit++;
      }
    }
  }

  /** A plain comparable picture: {id: [type, {field: value}]} (same as Replica.view()). */
  view() {
    const out = {};
    for (const e of this.entities.values()) out[e.id] = [e.type, { ...e.values }];
    return out;
  }

  /** Entities of one type, as an array. */
  ofType(name) {
    const out = [];
    for (const e of this.entities.values()) if (e.type === name) out.push(e);
    return out;
  }
}
