// Types of the gameserver JavaScript SDK (gameserver.js, served next to this file at
// /sdk/). The wire protocol is docs/PROTOCOL.md.

export declare const PROTOCOL_VERSION: 2;
export declare const C_INPUT: 1;
export declare const C_MESSAGE: 2;
export declare const C_PING: 3;
export declare const C_LEAVE: 4;
export declare const S_WELCOME: 10;
export declare const S_SNAPSHOT: 11;
export declare const S_DELTA: 12;
export declare const S_PONG: 13;
export declare const S_MESSAGE: 14;
export declare const S_ERROR: 15;
export declare const S_INPUT_LEAD: 16;
/** [17, tick]: a quiet room's keep-alive: nothing changed since `tick` (PROTOCOL §2). */
export declare const S_QUIET: 17;
/** The silence watchdog's least window, ms: no frame for max(this, 3 x keepalive) is a drop. */
export declare const MIN_SILENCE_MS: number;

/** WebSocket close codes (docs/PROTOCOL.md §3); DESYNC is the SDK's own. */
export declare const CLOSE: Readonly<{
  NORMAL: 1000; GOING_AWAY: 1001; PROTOCOL_ERROR: 1002; ABNORMAL: 1006; BAD_TEXT: 1007;
  TOO_BIG: 1009; ROOM_CRASHED: 1011; TRY_AGAIN: 1013; BAD_RESERVATION: 4001;
  ROOM_CLOSED: 4002; KICKED: 4003; JOIN_REFUSED: 4004; RATE_LIMITED: 4005; REPLACED: 4007;
  DESYNC: 4090;
}>;

/** A player-facing sentence for a matchmaking error code. */
export declare function matchmakeText(code: string, message?: string): string;
/** A player-facing sentence for a close code. */
export declare function closeText(code: number, reason?: string): string;
/** Whether a close after playing is worth reconnecting. */
export declare function shouldReconnect(code: number): boolean;
/** Matchmaking errors after which retrying the same room is pointless. */
export declare function isFinalMatchmakeError(code: string): boolean;
/** `wsUrl` with `?reconnect=TOKEN` instead of its query. */
export declare function resumeUrl(wsUrl: string, token: string): string;

/** msgpack encode/decode of one message. */
export interface Codec {
  encode(message: unknown): Uint8Array;
  decode(data: ArrayBuffer | Uint8Array): unknown;
}
/** The codec the SDK uses by default (the vendored msgpack build; see the README). */
export declare function loadCodec(): Promise<Codec>;

/** A field kind: "i" integers travel as differences, "v" values as they are. */
export type FieldKind = "i" | "v";
/** The WELCOME's schema: [[typeName, [[field, kind], ...]], ...]. */
export type Schema = Array<[string, Array<[string, FieldKind]>]>;

/** One entity of the replica. `values` holds the fields of its type, by name. */
export interface Entity<V = Record<string, any>> {
  /** The server's id (reused once freed). */
  id: number;
  /** The type's name from the schema, e.g. "Avatar". */
  type: string;
  typeIndex: number;
  /** Unique within this replica: an id reused by a new entity gets a new uid. */
  uid: number;
  values: V;
}

/** A broadcast event: [kind, body]. */
export type GameEvent = [string, unknown];

/**
 * One view part of an update (protocol 2): entity records created, change records,
 * ids removed, in the same flat formats as the DELTA's own. SNAPSHOT
 * `[11, ack, tick, entities, events, parts?]`, DELTA
 * `[12, ack, tick, base_tick, created, changed, removed, events, parts?]`.
 */
export type ViewPart = [created: unknown[], changed: unknown[], removed: number[]];

export declare class ReplicaError extends Error {}

/** The room's state as this client sees it: entities by id and by type name. */
export declare class Replica {
  constructor(schema: Schema);
  schema: Schema;
  /** The server tick of the last update applied (-1 before the first). */
  tick: number;
  /** The last of our inputs the server applied. */
  ack: number;
  entities: Map<number, Entity>;
  /** type name -> Map(id -> entity), for every type of the schema. */
  byType: Map<string, Map<number, Entity>>;
  /** The events of the last update. */
  events: GameEvent[];
  /**
   * What the last update added, changed (with field names, one entry per entity) and
   * removed: its net effect. An entity removed and created again in one update (with
   * per-player views: moving between two interest cells the player sees) with the same
   * type is the same entity continuing: same object and uid, reported as changed.
   */
  added: Entity[];
  changed: Array<[Entity, string[]]>;
  removed: Entity[];
  reset(schema: Schema): void;
  /**
   * Apply one decoded SNAPSHOT or DELTA, with its optional view parts (protocol 2: the
   * last element, a list of [created, changed, removed]); throws ReplicaError on a
   * protocol violation. A private field the player does not own is null.
   */
  apply(message: unknown[]): void;
  get(id: number): Entity | undefined;
  ofType<V = Record<string, any>>(name: string): Entity<V>[];
  view(): Record<number, [string, Record<string, any>]>;
}

/** The game's rule for one input: a port of the server's, pure. */
export type StepFunction<S, I, C = any> = (entityState: S, input: I, config: C) => S;

export interface PredictorOptions<C = any> {
  /** Passed to the step function (a Room passes the welcome's config). */
  config?: C;
  /** Numeric fields blended when drawn and measured for corrections. Default ["x", "y"]. */
  smooth?: string[];
  /** Unacknowledged inputs at most (default 30; the server queues 32). */
  maxPending?: number;
  /** How long a correction takes to blend out, ms (default 100). */
  smoothMs?: number;
  /** Corrections larger than this are snapped, not blended (default 250). */
  snapDistance?: number;
}

/** Client-side prediction and server reconciliation of one entity. */
export declare class Predictor<S extends Record<string, any> = Record<string, any>, I = unknown, C = any> {
  constructor(step: StepFunction<S, I, C>, options?: PredictorOptions<C>);
  step: StepFunction<S, I, C>;
  config: C | null;
  ready: boolean;
  seq: number;
  ack: number;
  pending: Array<{ seq: number; input: I }>;
  /** The predicted state (what the server will compute). */
  state: S | null;
  prev: S | null;
  /** The last server state reconciled with. */
  server: S | null;
  offset: Record<string, number>;
  lastCorrection: number;
  maxCorrection: number;
  corrections: number;
  /** How long a reconnection's correction takes to blend out, ms (default 180). */
  blendMs: number;
  /** The last renderState(), where a reseed blends from. */
  drawn: S | null;
  /** A reconnection's blend under way (eased over blendMs), or null. */
  blend: { from: Record<string, number>; ms: number } | null;
  reset(): void;
  /** After a reconnection: the next reconcile() blends from where it was drawn over
   * blendMs, whatever the distance, also after reset() (a new seat). */
  reseed(): void;
  canInput(): boolean;
  /** Predict an input; its seq, or 0 when it must not be sent. */
  applyInput(input: I, seq?: number): number;
  hold(): void;
  refuse(seq: number): void;
  /** Rebuild from the server's state after `ack`; returns the correction's size. */
  reconcile(serverState: S, ack: number): number;
  decay(dtMs: number): void;
  /** The state to draw: smoothed fields between the last two predictions, plus the offset. */
  renderState(alpha?: number): S | null;
}

export interface InterpolatorOptions {
  /** Render time = server time - delayMs (default 2.5 ticks; a Room: max(100, 2.5 ticks)). */
  delayMs?: number;
  /** Interpolated numeric fields. Default ["x", "y"]. */
  fields?: string[];
  maxStates?: number;
  windowMs?: number;
}

/** Entity interpolation: states buffered and sampled `delayMs` in the past. */
export declare class Interpolator<T extends Record<string, any> = Record<string, any>> {
  constructor(tickMs: number, options?: InterpolatorOptions);
  tickMs: number;
  delayMs: number;
  reset(): void;
  push(tick: number, arrivalMs: number, entities: Map<unknown, T>): void;
  renderTick(nowMs: number): number;
  bufferedMs(nowMs: number): number;
  sample(nowMs: number): Map<unknown, T>;
}

/** Amounts per second over a sliding window. */
export declare class RateCounter {
  constructor(windowMs?: number);
  add(nowMs: number, amount?: number): void;
  rate(nowMs: number): number;
}

/** A fixed-step clock. */
export declare class StepClock {
  constructor(stepMs: number, maxSteps?: number);
  restart(nowMs: number): void;
  /** Run `steps` steps further ahead, 25% faster until gained (the server's INPUT_LEAD). */
  hurry(steps: number): void;
  advance(nowMs: number): number;
  alpha(nowMs: number): number;
}

/** A refused POST /matchmake or /reconnect; `message` is player-facing. */
export declare class MatchmakeError extends Error {
  code: string;
  serverMessage: string;
  status: number;
}

/** A game socket that closed before its WELCOME; `message` is player-facing. */
export declare class ConnectError extends Error {
  code: number;
  reason: string;
  serverError: string | null;
}

export interface ClientOptions {
  /** A WebSocket implementation (Node 20 without --experimental-websocket: e.g. the `ws` package). */
  WebSocket?: any;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
  /** A msgpack codec (default: loadCodec()). */
  codec?: Codec;
  /** The game of join(roomId) when its options do not say. */
  game?: string;
  /** Reconnection back-off in ms per attempt (default RECONNECT_DELAYS_MS), or false for none. */
  reconnect?: false | { delays: number[] };
  /**
   * The silence watchdog: with no frame at all (update, QUIET, PONG...) for this many ms the
   * socket is taken for lost and the room reconnects. Default max(3000, 3 x keepalive);
   * false turns it off.
   */
  silenceMs?: number | false;
}

export interface JoinOptions {
  /** Display name (the server cleans it; `room.name` is the result). */
  name?: string;
  /** The room's options (on_create, player.options). */
  options?: Record<string, unknown>;
  /** A signed join token, when the server requires one. */
  auth?: string;
  /** create() only: an unlisted room. */
  private?: boolean;
  /** join(roomId) only: the room's game. */
  game?: string;
  reconnect?: false | { delays: number[] };
}

/** client.spectate()'s options. */
export interface SpectateOptions {
  /** The room's game (default: the client's `game` option). Required one way or the other. */
  game?: string;
  /** A signed join token, when the server requires one. */
  auth?: string;
  reconnect?: false | { delays: number[] };
}

/** A public room in the listing (GET /rooms). */
export interface RoomListing {
  room_id: string;
  game: string;
  players: number;
  reserved: number;
  max_players: number;
  locked: boolean;
  joinable: boolean;
  /** Connected spectators (servers with spectator support). */
  spectators?: number;
  metadata: Record<string, unknown>;
  /** The creation options the room is matched by (Room.match_by), when it has any. */
  match?: Record<string, unknown>;
}

export declare class Client {
  /** `baseUrl`: the server, e.g. "http://localhost:8000" (default: the page's origin). */
  constructor(baseUrl?: string, options?: ClientOptions);
  baseUrl: string;
  /** `I`: the game's input type; `C`: its welcome config. */
  joinOrCreate<I = unknown, C = Record<string, any>>(game: string, options?: JoinOptions): Promise<Room<I, C>>;
  create<I = unknown, C = Record<string, any>>(game: string, options?: JoinOptions): Promise<Room<I, C>>;
  join<I = unknown, C = Record<string, any>>(roomId: string, options?: JoinOptions): Promise<Room<I, C>>;
  joinAny<I = unknown, C = Record<string, any>>(game: string, options?: JoinOptions): Promise<Room<I, C>>;
  /**
   * Watch a room without a seat (POST /matchmake mode "spectate"): a Room with
   * `spectator === true` and `playerId === 0` whose sendInput()/send()/pumpInput()/
   * predict() throw. Without `roomId` the server picks the game's live public room
   * with the most players. Rejects with MatchmakeError "no_such_room" or
   * "spectators_full" (or ConnectError 4004 when the cap is reached at the socket).
   * After a drop it spectates the same room again; those two refusals end it.
   */
  spectate<C = Record<string, any>>(roomId?: string, options?: SpectateOptions): Promise<Room<never, C>>;
  spectate<C = Record<string, any>>(options: SpectateOptions): Promise<Room<never, C>>;
  /** A seat back from a reconnection token (POST /reconnect). */
  reconnect<I = unknown, C = Record<string, any>>(token: string, options?: JoinOptions): Promise<Room<I, C>>;
  listRooms(game?: string): Promise<RoomListing[]>;
  games(): Promise<string[]>;
  matchmake(body: Record<string, unknown>, options?: { signal?: AbortSignal }): Promise<Record<string, any>>;
  /**
   * Download a recording and open it: a URL, or a name from GET /admin/recordings
   * (then `adminToken` is required; it is sent as `Authorization: Bearer`).
   */
  fetchRecording<C = Record<string, any>>(urlOrName: string,
    options?: { adminToken?: string; codec?: Codec }): Promise<Replay<C>>;
}

export type RoomStatus = "idle" | "connecting" | "playing" | "reconnecting" | "ended";

export interface StatusInfo {
  text?: string;
  code?: number;
  /** reconnecting: this attempt's number (1, 2, ...). */
  attempt?: number;
  /** reconnecting: when the attempt starts, in performance.now() milliseconds. */
  retryAt?: number;
  /** reconnecting: the wait before the attempt, ms, as planned when the status was set. */
  retryInMs?: number;
  resumed?: boolean;
}

/** The default reconnection delays, ms: 250 ms for about 3 s, then back-off, ~32 s in all. */
export declare const RECONNECT_DELAYS_MS: number[];

export interface RoomStats {
  rttMs: number | null;
  tickRate: number;
  serverTick: number;
  updatesPerSec: number;
  bytesPerSec: number;
  pendingInputs: number;
  reconnects: number;
}

/** Removes the callback it was returned for. */
export type Unsubscribe = () => void;

export declare class Room<I = unknown, C = Record<string, any>> {
  id: string;
  game: string;
  name: string | null;
  private: boolean;
  /** A spectator (client.spectate()): watches only; playerId is 0. */
  spectator: boolean;
  /** Our player id; 0 for a spectator. */
  playerId: number;
  tickRate: number;
  tickMs: number;
  /** The game's constants from the welcome. */
  config: C;
  schema: Schema;
  state: Replica;
  reconnectToken: string | null;
  /**
   * A quiet room (WELCOME's keepalive > 0): it sends an update only when something changed,
   * and a QUIET keep-alive at least every `keepalive` seconds otherwise; ticks may jump.
   */
  quiet: boolean;
  /** A quiet room's keep-alive interval, seconds; 0 for a room that updates every tick. */
  keepalive: number;
  /** The tick of the last QUIET keep-alive (-1: none yet). */
  lastQuiet: number;
  /** The watchdog's setting (ClientOptions.silenceMs), if any. */
  silenceMs: number | false | undefined;
  status: RoomStatus;
  statusInfo: StatusInfo;
  reconnects: number;
  /** Smoothed round trip, ms (null before the first PONG). */
  rtt: number | null;
  lastRtt: number | null;
  serverTick: number;
  updates: RateCounter;
  bytes: RateCounter;
  seq: number;
  pending: Array<{ seq: number; input: I }>;
  predictor: Predictor<any, I, C> | null;

  /**
   * Entity callbacks, once per update in this order: removals, additions, changes. With
   * per-player views an entity is added when it comes into this player's view (its
   * interest area, a group joined) and removed when it leaves it, not only when spawned
   * or destroyed; one moving between two cells the player sees only changes.
   */
  /** Also called at once for the entities already in the state. */
  onAdd(type: string, fn: (entity: Entity) => void): Unsubscribe;
  onAdd(fn: (entity: Entity) => void): Unsubscribe;
  onChange(type: string, fn: (entity: Entity, fields: string[]) => void): Unsubscribe;
  onChange(fn: (entity: Entity, fields: string[]) => void): Unsubscribe;
  onRemove(type: string, fn: (entity: Entity) => void): Unsubscribe;
  onRemove(fn: (entity: Entity) => void): Unsubscribe;
  onEvent(kind: string, fn: (body: any, kind: string) => void): Unsubscribe;
  onEvent(fn: (body: any, kind: string) => void): Unsubscribe;
  onMessage(kind: string, fn: (body: any, kind: string) => void): Unsubscribe;
  onMessage(fn: (body: any, kind: string) => void): Unsubscribe;
  onStateChange(fn: (state: Replica, room: this) => void): Unsubscribe;
  onError(fn: (code: string, message: string, seq?: number) => void): Unsubscribe;
  onStatus(fn: (status: RoomStatus, info: StatusInfo) => void): Unsubscribe;
  onReconnect(fn: (info: { resumed: boolean }) => void): Unsubscribe;
  /** `consented`: leave() was called; else kicked, closed, or reconnection given up. */
  onLeave(fn: (code: number, text: string, consented: boolean) => void): Unsubscribe;

  /** A typed room message (chat, ...); false when not connected. Throws for a spectator. */
  send(kind: string, body: unknown): boolean;
  /** One numbered input (predicted when predict() was called); its seq, or 0 if not sent. Throws for a spectator. */
  sendInput(input: I | null): number;
  /** Input clock for held controls: one input per tick while `input` is not null, and one
   * null input when it becomes null (let go: the server's input stream for us ends). */
  pumpInput(input: I | null, nowMs?: number): number;
  leave(): void;
  /** While reconnecting and waiting: try at once (true); otherwise a no-op (false). */
  retryNow(): boolean;

  predict<S extends Record<string, any>>(step: StepFunction<S, I, C>,
    options: PredictorOptions<C> & { own: (room: Room<I, C>) => Entity | undefined | null }): Predictor<S, I, C>;
  ownEntity(): Entity | null;
  predicted<S = Record<string, any>>(nowMs?: number): S | null;
  interpolate(options?: InterpolatorOptions & { filter?: (entity: Entity, room: Room<I, C>) => boolean }):
    Interpolator<Record<string, any> & { id: number; type: string }>;
  stats(nowMs?: number): RoomStats;
  /** The silence watchdog's window, ms (0: off): max(3000, 3 x keepalive) by default. */
  silenceWindow(): number;
}

// -- recordings (docs/PROTOCOL.md §8) ----------------------------------------------------

/** Not a recording, or a damaged one. */
export declare class RecordingError extends Error {}

/** A recording's first frame: what a WELCOME carries, and when it started. */
export interface RecordingHeader<C = Record<string, any>> {
  room_id: string;
  game: string;
  tick_rate: number;
  schema: Schema;
  config: C;
  protocol: number;
  /** Unix seconds. */
  started: number;
  part: number;
}

/** One frame: a keyframe ("k", a SNAPSHOT) or an update ("d", a DELTA), decoded. */
export interface RecordingFrame {
  kind: "k" | "d";
  /** Milliseconds since `started`. */
  ms: number;
  message: unknown[];
}

/** One event of the recording's timeline (arena: "joined", "left", "chat"). */
export interface ReplayEvent {
  ms: number;
  tick: number;
  kind: string;
  body: any;
}

/** A recording's header and frames; a frame cut short at the end is left out. */
export declare function readRecording(bytes: Uint8Array | ArrayBuffer, codec: Codec):
  { header: RecordingHeader; frames: RecordingFrame[] };

/** Open a recording's bytes (gzipped or not) as a Replay, at its first keyframe. */
export declare function openRecording<C = Record<string, any>>(data: Uint8Array | ArrayBuffer,
  options?: { codec?: Codec }): Promise<Replay<C>>;

/**
 * A recording played as a room. `room` is a spectator Room (same state, callbacks and
 * interpolate()) fed from the file. A seek applies the last keyframe at or before the
 * time, then the updates up to it; callbacks report the net change and fire no events.
 */
export declare class Replay<C = Record<string, any>> {
  readonly header: RecordingHeader<C>;
  readonly frames: RecordingFrame[];
  readonly room: Room<never, C> & { replay: Replay<C> };
  /** ms of the first keyframe (the earliest time to seek to). */
  readonly start: number;
  /** ms of the last frame. */
  readonly duration: number;
  /** Every event in the recording, in order. */
  readonly events: ReplayEvent[];
  /** Playback position, ms since `header.started`. */
  readonly time: number;
  /** The replica's tick. */
  readonly tick: number;
  readonly playing: boolean;
  /** 0.25 to 8 (clamped). */
  speed: number;
  play(): void;
  pause(): void;
  seek(ms: number): void;
  close(): void;
  /** After each update, seek, play or pause. */
  onUpdate(fn: (replay: Replay<C>) => void): Unsubscribe;
}
