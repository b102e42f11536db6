//! "linearizable": every consumer behaves as one atomic register with generations.
//!
//! # Model
//!
//! A consumer's state is `(generation, value)`, initially absent `(None, {})`:
//!
//! | operation (projected onto one key)            | precondition          | new state                         |
//! |-----------------------------------------------|-----------------------|-----------------------------------|
//! | write `expected -> v`, `Ok` (or `Unknown`, if it applied) | `gen == expected` | `(expected + 1 or 1, v)`       |
//! | single-key write refused `409 concurrent_update` | `gen != expected`  | unchanged                         |
//! | delete `Ok` (or `Unknown`, if it applied)     | `gen` is `Some`       | absent                            |
//! | delete `404`                                  | `gen` is `None`       | unchanged                         |
//! | read `Ok` seeing `s`                          | `state == s`          | unchanged                         |
//!
//! Operations that carry no information are dropped: other refusals (capacity, 400...),
//! multi-key writes refused with `concurrent_update` (the key that mismatched is unknown), and
//! reads that failed. A multi-key write that is `Ok` or `Unknown` applied atomically to all its
//! keys; checking each key separately with its projection is a *necessary* condition of
//! linearizability of the whole history, so every failure reported here is a real violation.
//! The final reads of every node are appended as reads invoked after every operation
//! completed, all concurrent with each other.
//!
//! # Search
//!
//! Per key, a Wing–Gong search with Lowe's memoization: a configuration is the set of
//! operations already linearized plus the register state; from it, a *candidate* is any
//! unlinearized operation that no unlinearized operation must precede (`a` precedes `b` when
//! `a.complete_ns < b.invoke_ns`). The history is linearizable iff some sequence of candidate
//! steps linearizes every definite operation. Configurations already explored are never
//! explored again (they failed), which makes the search polynomial in practice.
//!
//! `Unknown` operations have no completion bound (their window is `[invoke, ∞)`) and may never
//! take effect: they never precede anything, they are candidates only where they *apply*
//! (linearizing one as a no-op is the same as never linearizing it), and the search succeeds
//! when every definite operation is linearized, whatever unknown ones remain. An unknown
//! operation that can no longer apply thus costs one precondition check per step and does not
//! multiply configurations.
//!
//! Three reductions keep the search small without losing completeness:
//! * a state-preserving operation (read, 404 delete, refused write) that is a candidate and
//!   whose precondition holds is linearized at once, without trying alternatives: moving it
//!   earlier in any valid linearization keeps it valid (the states of the others are unchanged
//!   and no real-time constraint is broken, since all its predecessors are already placed);
//! * the memo key is compact: the state (values interned to integers), the index of the first
//!   unlinearized definite operation and the bits of the definite operations after it (a
//!   window as wide as the concurrency); under it are kept the sets of applied unknown
//!   operations visited, and a configuration is pruned when one visited with a *subset* of
//!   its applied unknown operations failed (see [`Memo`]: having applied more unknown
//!   operations only removes options);
//! * of several unlinearized unknown candidates with the same action (same expected
//!   generation and value), only the first is tried: they are interchangeable, having no
//!   completion bound.
//!
//! A key whose search visits more than [`Options::max_search_states`] configurations is
//! *inconclusive*, and fails the checker: it is never silently passed.
//!
//! # Limits
//!
//! The search is fast when a key has few concurrent operations and few unknown ones (a
//! linearizable key of 2,000 operations with 20 unknown writes takes milliseconds). Refuting a
//! key is costlier, since every configuration of the prefix before the violation must be
//! exhausted: with many unknown writes that stay applicable (generations recur after every
//! delete, so an unknown write expecting `null` or a low generation can apply after each one),
//! the number of configurations grows combinatorially and the key may end up inconclusive.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::{count, ms, op_header, short_gen, short_outcome, short_value, Options, Report};
use crate::history::{History, OpKind, Outcome, Value, CONCURRENT_UPDATE};

const NAME: &str = "linearizable";

/// How many placed operations a violation report shows before the stuck point.
const TAIL: usize = 8;
/// How many operations, in invoke order, a violation report shows before / after the stuck point.
const AROUND_BEFORE: usize = 6;
const AROUND_AFTER: usize = 12;
/// How many failing consumers are described in full.
const DESCRIBED_KEYS: usize = 5;

/// A consumer's state; `value` is interned (0 is the empty value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct State {
    generation: Option<u64>,
    value: u32,
}

const ABSENT: State = State {
    generation: None,
    value: 0,
};

/// What one operation does to one key (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Write { expected: Option<u64>, value: u32 },
    Refused { expected: Option<u64> },
    Delete,
    DeleteMissing,
    Read(State),
}

impl Action {
    /// Whether it can change the state (only those need a choice of position).
    fn mutates(self) -> bool {
        matches!(self, Action::Write { .. } | Action::Delete)
    }

    /// The state after it, if its precondition holds in `s`.
    fn step(self, s: State) -> Option<State> {
        match self {
            Action::Write { expected, value } => {
                if s.generation != expected {
                    return None;
                }
                let generation = match expected {
                    None => 1,
                    Some(g) => g.checked_add(1)?,
                };
                Some(State {
                    generation: Some(generation),
                    value,
                })
            }
            Action::Refused { expected } => (s.generation != expected).then_some(s),
            Action::Delete => s.generation.is_some().then_some(ABSENT),
            Action::DeleteMissing => s.generation.is_none().then_some(s),
            Action::Read(seen) => (s == seen).then_some(s),
        }
    }
}

/// Where a projected operation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Index into `History::ops`.
    Op(usize),
    /// Index into `History::finals`.
    Final(usize),
}

/// One operation projected onto one key.
#[derive(Debug, Clone, Copy)]
struct KeyOp {
    source: Source,
    invoke: u64,
    /// For unknown operations, when the client gave up (not a bound on the effect).
    complete: u64,
    unknown: bool,
    action: Action,
}

/// Values interned to small integers; 0 is the empty value.
struct Interner {
    ids: HashMap<Value, u32>,
    values: Vec<Value>,
}

impl Interner {
    fn new() -> Interner {
        let mut ids = HashMap::new();
        ids.insert(Value::new(), 0);
        Interner {
            ids,
            values: vec![Value::new()],
        }
    }

    fn intern(&mut self, v: &Value) -> u32 {
        if let Some(&id) = self.ids.get(v) {
            return id;
        }
        let id = u32::try_from(self.values.len()).unwrap_or(u32::MAX);
        self.ids.insert(v.clone(), id);
        self.values.push(v.clone());
        id
    }

    fn state(&mut self, generation: Option<u64>, v: &Value) -> State {
        State {
            generation,
            value: self.intern(v),
        }
    }

    fn show(&self, s: State) -> String {
        let value = self
            .values
            .get(s.value as usize)
            .map_or_else(|| "?".to_string(), short_value);
        match s.generation {
            None if s.value == 0 => "absent".to_string(),
            g => format!("{} {value}", short_gen(g)),
        }
    }
}

/// Projects the history onto its keys (see the module docs for what is kept).
fn project(h: &History, interner: &mut Interner) -> BTreeMap<Uuid, Vec<KeyOp>> {
    let mut keys: BTreeMap<Uuid, Vec<KeyOp>> = BTreeMap::new();
    for (i, op) in h.ops.iter().enumerate() {
        let unknown = matches!(op.outcome, Outcome::Unknown { .. });
        let conflict = matches!(&op.outcome, Outcome::Fail { status: 409, code: Some(code) } if code == CONCURRENT_UPDATE);
        let mut add = |key: Uuid, action: Action| {
            keys.entry(key).or_default().push(KeyOp {
                source: Source::Op(i),
                invoke: op.invoke_ns,
                complete: op.complete_ns.max(op.invoke_ns),
                unknown,
                action,
            });
        };
        match (&op.kind, &op.outcome) {
            (OpKind::Write { writes }, Outcome::Ok | Outcome::Unknown { .. }) => {
                for w in writes {
                    let value = interner.intern(&w.value);
                    let expected = w.expected_generation;
                    add(w.consumer, Action::Write { expected, value });
                }
            }
            (OpKind::Write { writes }, Outcome::Fail { .. }) if conflict => {
                if let [w] = writes.as_slice() {
                    let expected = w.expected_generation;
                    add(w.consumer, Action::Refused { expected });
                }
            }
            (OpKind::Delete { consumer }, Outcome::Ok | Outcome::Unknown { .. }) => {
                add(*consumer, Action::Delete);
            }
            (OpKind::Delete { consumer }, Outcome::Fail { status: 404, .. }) => {
                add(*consumer, Action::DeleteMissing);
            }
            (
                OpKind::ReadConsumer {
                    consumer,
                    seen: Some(seen),
                },
                Outcome::Ok,
            ) => {
                let s = interner.state(seen.generation, &seen.value);
                add(*consumer, Action::Read(s));
            }
            _ => {}
        }
    }

    // The final reads: after everything, concurrent with each other.
    let end = h
        .ops
        .iter()
        .map(|op| op.complete_ns.max(op.invoke_ns))
        .max()
        .unwrap_or(0);
    let invoke = end.saturating_add(1);
    let complete = end.saturating_add(2);
    for (i, f) in h.finals.iter().enumerate() {
        for (consumer, seen) in &f.consumers {
            let s = interner.state(seen.generation, &seen.value);
            keys.entry(*consumer).or_default().push(KeyOp {
                source: Source::Final(i),
                invoke,
                complete,
                unknown: false,
                action: Action::Read(s),
            });
        }
    }
    keys
}

/// A projected operation of one key: definite (index into the definite list) or unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ref {
    Def(usize),
    Unk(usize),
}

fn bit(bits: &[u64], i: usize) -> bool {
    bits.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

fn set_bit(bits: &mut [u64], i: usize, on: bool) {
    if let Some(w) = bits.get_mut(i / 64) {
        if on {
            *w |= 1 << (i % 64);
        } else {
            *w &= !(1 << (i % 64));
        }
    }
}

/// Where the search got furthest: what a violation report shows.
#[derive(Debug, Clone)]
struct Stuck {
    /// Definite operations linearized.
    placed: usize,
    /// Unknown operations applied.
    applied: usize,
    /// The first unlinearized definite operation.
    first: usize,
    state: State,
    /// The last operations placed, oldest first.
    tail: Vec<Ref>,
    /// The candidates at that point (none of which leads to a linearization), without the
    /// unknown operations that cannot apply in `state`.
    candidates: Vec<Ref>,
    /// Unknown operations not applied in the prefix.
    pending_unknown: usize,
    placed_def: Vec<u64>,
}

/// The verdict on one key.
#[derive(Debug)]
enum Verdict {
    Linearizable { states: usize },
    Violation { states: usize, stuck: Box<Stuck> },
    Inconclusive { states: usize },
}

/// The mutable configuration of the search on one key.
struct Search<'a> {
    def: &'a [KeyOp],
    unk: &'a [KeyOp],
    done_def: Vec<u64>,
    done_unk: Vec<u64>,
    /// First unlinearized definite operation.
    first: usize,
    placed: usize,
    applied: usize,
    state: State,
}

/// What undoing a move restores.
#[derive(Debug, Clone, Copy)]
struct Undo {
    state: State,
}

/// One level of the depth-first search.
struct Frame {
    /// The moves to try from this configuration, with the state each leads to.
    moves: Vec<(Ref, State)>,
    next: usize,
    /// The move that led here and how to undo it.
    entered: Option<(Ref, Undo)>,
}

impl<'a> Search<'a> {
    fn new(def: &'a [KeyOp], unk: &'a [KeyOp]) -> Search<'a> {
        Search {
            def,
            unk,
            done_def: vec![0; def.len().div_ceil(64)],
            done_unk: vec![0; unk.len().div_ceil(64)],
            first: 0,
            placed: 0,
            applied: 0,
            state: ABSENT,
        }
    }

    fn op(&self, r: Ref) -> Option<&'a KeyOp> {
        match r {
            Ref::Def(i) => self.def.get(i),
            Ref::Unk(i) => self.unk.get(i),
        }
    }

    /// The unlinearized operations that nothing unlinearized must precede.
    fn candidates(&self) -> Vec<Ref> {
        // The earliest completion among unlinearized definite operations: an operation is a
        // candidate iff it was invoked no later. Operations are sorted by invoke, so the scan
        // stops at the first one invoked after the running minimum.
        let mut min_complete = u64::MAX;
        let mut scanned = Vec::new();
        for (i, op) in self.def.iter().enumerate().skip(self.first) {
            if op.invoke > min_complete {
                break;
            }
            if !bit(&self.done_def, i) {
                min_complete = min_complete.min(op.complete);
                scanned.push(i);
            }
        }
        let mut out: Vec<Ref> = scanned
            .into_iter()
            .filter(|&i| self.def.get(i).is_some_and(|op| op.invoke <= min_complete))
            .map(Ref::Def)
            .collect();
        out.extend(
            self.unk
                .iter()
                .enumerate()
                .filter(|(i, op)| op.invoke <= min_complete && !bit(&self.done_unk, *i))
                .map(|(i, _)| Ref::Unk(i)),
        );
        out
    }

    /// The moves worth trying from here (see the module docs): a single state-preserving one
    /// if any applies; else every applicable mutating candidate, definite ones first, except
    /// all but the first of identical unknown operations.
    fn moves(&self) -> Vec<(Ref, State)> {
        let mut moves = Vec::new();
        let mut unknown_actions: Vec<Action> = Vec::new();
        for r in self.candidates() {
            let Some(op) = self.op(r) else { continue };
            let Some(next) = op.action.step(self.state) else {
                continue;
            };
            if !op.action.mutates() {
                return vec![(r, next)];
            }
            if let Ref::Unk(_) = r {
                if unknown_actions.contains(&op.action) {
                    continue;
                }
                unknown_actions.push(op.action);
            }
            moves.push((r, next));
        }
        moves
    }

    /// Linearizes `r`, leading to `next`; returns what [`Search::undo`] needs.
    fn apply(&mut self, r: Ref, next: State) -> Undo {
        let undo = Undo { state: self.state };
        match r {
            Ref::Def(i) => {
                set_bit(&mut self.done_def, i, true);
                self.placed += 1;
                while self.first < self.def.len() && bit(&self.done_def, self.first) {
                    self.first += 1;
                }
            }
            Ref::Unk(i) => {
                set_bit(&mut self.done_unk, i, true);
                self.applied += 1;
            }
        }
        self.state = next;
        undo
    }

    fn undo(&mut self, r: Ref, undo: Undo) {
        match r {
            Ref::Def(i) => {
                set_bit(&mut self.done_def, i, false);
                self.placed = self.placed.saturating_sub(1);
                self.first = self.first.min(i);
            }
            Ref::Unk(i) => {
                set_bit(&mut self.done_unk, i, false);
                self.applied = self.applied.saturating_sub(1);
            }
        }
        self.state = undo.state;
    }

    /// The configuration without the applied unknown operations, compactly (see the module
    /// docs).
    fn key(&self) -> Box<[u64]> {
        let window = self.done_def.get(self.first / 64..).unwrap_or_default();
        let len = window.iter().rposition(|&w| w != 0).map_or(0, |i| i + 1);
        let mut key = Vec::with_capacity(4 + len);
        key.push(self.state.generation.map_or(0, |_| 1));
        key.push(self.state.generation.unwrap_or(0));
        key.push(u64::from(self.state.value));
        key.push(self.first as u64);
        key.extend_from_slice(window.get(..len).unwrap_or_default());
        key.into_boxed_slice()
    }

    fn stuck(&self, stack: &[Frame], last: Option<Ref>) -> Stuck {
        let mut tail: Vec<Ref> = last.into_iter().collect();
        tail.extend(
            stack
                .iter()
                .rev()
                .filter_map(|f| f.entered.map(|(r, _)| r))
                .take(TAIL.saturating_sub(tail.len())),
        );
        tail.reverse();
        Stuck {
            placed: self.placed,
            applied: self.applied,
            first: self.first,
            state: self.state,
            tail,
            candidates: self
                .candidates()
                .into_iter()
                .filter(|&r| match r {
                    Ref::Def(_) => true,
                    Ref::Unk(_) => self
                        .op(r)
                        .is_some_and(|op| op.action.step(self.state).is_some()),
                })
                .collect(),
            pending_unknown: self
                .unk
                .iter()
                .enumerate()
                .filter(|(i, _)| !bit(&self.done_unk, *i))
                .count(),
            placed_def: self.done_def.clone(),
        }
    }
}

/// The configurations visited, all of which failed (the search stops at the first success).
///
/// A configuration is (definite operations placed, state, unknown operations applied). One
/// with applied set `A` *dominates* one with the same definite set and state and an applied
/// set `A' ⊇ A`: every continuation of the latter is one of the former (an unknown operation
/// applies at most once, and unknown operations never constrain which operations are
/// candidates), so if the former failed, so does the latter. Without this, an unknown write
/// that could apply at many points (e.g. just before each delete, after which the states
/// agree again) would multiply the configurations by two per such write.
#[derive(Default)]
struct Memo {
    /// Per (definite set, state): the minimal applied sets visited.
    seen: HashMap<Box<[u64]>, Vec<Box<[u64]>>>,
    /// Configurations recorded so far (the search budget counts these).
    states: usize,
}

impl Memo {
    /// Records a configuration; false if it (or one dominating it) was already visited.
    fn visit(&mut self, key: Box<[u64]>, applied: &[u64]) -> bool {
        let sets = self.seen.entry(key).or_default();
        if sets.iter().any(|a| is_subset(a, applied)) {
            return false;
        }
        sets.retain(|a| !is_subset(applied, a));
        sets.push(applied.into());
        self.states = self.states.saturating_add(1);
        true
    }
}

/// Whether the bitset `a` is a subset of `b` (both of the same length).
fn is_subset(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).all(|(x, y)| x & !y == 0)
}

/// Searches for a linearization of one key's operations (each list sorted by invoke).
fn check_key(def: &[KeyOp], unk: &[KeyOp], budget: usize) -> Verdict {
    let mut s = Search::new(def, unk);
    if def.is_empty() {
        return Verdict::Linearizable { states: 0 };
    }
    let mut memo = Memo::default();
    let mut best = s.stuck(&[], None);
    let mut stack = vec![Frame {
        moves: s.moves(),
        next: 0,
        entered: None,
    }];
    loop {
        let Some(top) = stack.last_mut() else {
            return Verdict::Violation {
                states: memo.states,
                stuck: Box::new(best),
            };
        };
        let Some(&(r, next)) = top.moves.get(top.next) else {
            if let Some(Frame {
                entered: Some((r, undo)),
                ..
            }) = stack.pop()
            {
                s.undo(r, undo);
            }
            continue;
        };
        top.next += 1;
        let undo = s.apply(r, next);
        if s.placed == def.len() {
            return Verdict::Linearizable {
                states: memo.states,
            };
        }
        if !memo.visit(s.key(), &s.done_unk) {
            s.undo(r, undo);
            continue;
        }
        if memo.states > budget {
            return Verdict::Inconclusive {
                states: memo.states,
            };
        }
        if s.placed > best.placed {
            best = s.stuck(&stack, Some(r));
        }
        stack.push(Frame {
            moves: s.moves(),
            next: 0,
            entered: Some((r, undo)),
        });
    }
}

/// One key's operations, ready for the search and for reporting.
struct KeyOps {
    def: Vec<KeyOp>,
    unk: Vec<KeyOp>,
}

impl KeyOps {
    fn new(ops: Vec<KeyOp>) -> KeyOps {
        let (mut unk, mut def): (Vec<KeyOp>, Vec<KeyOp>) = ops.into_iter().partition(|o| o.unknown);
        // Stable: ties keep history order.
        def.sort_by_key(|o| o.invoke);
        unk.sort_by_key(|o| o.invoke);
        KeyOps { def, unk }
    }

    fn get(&self, r: Ref) -> Option<&KeyOp> {
        match r {
            Ref::Def(i) => self.def.get(i),
            Ref::Unk(i) => self.unk.get(i),
        }
    }
}

/// One projected operation on one line: who, when, what it did to this key, outcome.
fn describe(h: &History, interner: &Interner, key: Uuid, op: &KeyOp) -> String {
    let action = match op.action {
        Action::Write { expected, value } => {
            let v = interner
                .values
                .get(value as usize)
                .map_or_else(|| "?".to_string(), short_value);
            format!("write exp={} -> {v}", short_gen(expected))
        }
        Action::Refused { expected } => format!("write exp={} (refused)", short_gen(expected)),
        Action::Delete => "delete".to_string(),
        Action::DeleteMissing => "delete (404)".to_string(),
        Action::Read(s) => format!("read -> {}", interner.show(s)),
    };
    match op.source {
        Source::Op(i) => match h.ops.get(i) {
            Some(o) => {
                let others = match &o.kind {
                    OpKind::Write { writes } if writes.len() > 1 => format!(
                        " [POST, +{} other key(s)]",
                        writes.iter().filter(|w| w.consumer != key).count()
                    ),
                    _ => String::new(),
                };
                format!(
                    "{} {action}{others} {}",
                    op_header(o),
                    short_outcome(&o.outcome)
                )
            }
            None => format!("op #{i}? {action}"),
        },
        Source::Final(i) => {
            let node = h.finals.get(i).map_or(0, |f| f.node);
            format!(
                "final n{node} [{}..{} ms] {action}",
                ms(op.invoke),
                ms(op.complete)
            )
        }
    }
}

/// Explains a key's violation: where the search got furthest and what could not follow.
fn explain(h: &History, interner: &Interner, key: Uuid, ops: &KeyOps, stuck: &Stuck) -> String {
    let line = |r: Ref| {
        ops.get(r)
            .map_or_else(|| "?".to_string(), |o| describe(h, interner, key, o))
    };
    let mut out = format!(
        "consumer {key}: not linearizable ({} definite ops, {} unknown). The longest \
         linearizable prefix places {} definite ops (+{} unknown applied), ending in state {}.\n",
        ops.def.len(),
        ops.unk.len(),
        stuck.placed,
        stuck.applied,
        interner.show(stuck.state)
    );
    out.push_str("  last ops placed:\n");
    for &r in &stuck.tail {
        out.push_str(&format!("    {}\n", line(r)));
    }
    out.push_str("  could not be placed next (none leads to a linearization):\n");
    for &r in &stuck.candidates {
        out.push_str(&format!("    {}\n", line(r)));
    }
    let applicable = stuck
        .candidates
        .iter()
        .filter(|r| matches!(r, Ref::Unk(_)))
        .count();
    out.push_str(&format!(
        "  ({} unknown ops not applied in the prefix; those not listed cannot apply in that \
         state)\n",
        stuck.pending_unknown.saturating_sub(applicable)
    ));
    out.push_str("  ops in invoke order around that point (* = in the prefix):\n");
    let from = stuck.first.saturating_sub(AROUND_BEFORE);
    let to = stuck.first.saturating_add(AROUND_AFTER).min(ops.def.len());
    let lo = ops.def.get(from).map_or(0, |o| o.invoke);
    let hi = ops.def.get(to).map_or(u64::MAX, |o| o.invoke);
    let mut around: Vec<(u64, Ref)> = (from..to)
        .filter_map(|i| ops.def.get(i).map(|o| (o.invoke, Ref::Def(i))))
        .collect();
    around.extend(
        ops.unk
            .iter()
            .enumerate()
            .filter(|(_, o)| o.invoke >= lo && o.invoke < hi)
            .map(|(i, o)| (o.invoke, Ref::Unk(i))),
    );
    around.sort_by_key(|&(invoke, _)| invoke);
    for (_, r) in around {
        let mark = match r {
            Ref::Def(i) if bit(&stuck.placed_def, i) => "*",
            _ => " ",
        };
        out.push_str(&format!("  {mark} {}\n", line(r)));
    }
    out
}

/// Checks every consumer's projected history, plus the final reads, for linearizability
/// against the register-with-generations model; see the module docs.
pub fn linearizable(h: &History, opts: &Options) -> Report {
    let mut interner = Interner::new();
    let keys = project(h, &mut interner);
    let n_keys = keys.len();
    let mut total_ops = 0usize;
    let (mut total_states, mut max_states) = (0usize, 0usize);
    let mut violations: Vec<Uuid> = Vec::new();
    let mut inconclusive: Vec<(Uuid, usize)> = Vec::new();
    let mut details: Vec<String> = Vec::new();
    for (key, ops) in keys {
        total_ops += ops.len();
        let ops = KeyOps::new(ops);
        let verdict = check_key(&ops.def, &ops.unk, opts.max_search_states);
        let states = match &verdict {
            Verdict::Linearizable { states }
            | Verdict::Violation { states, .. }
            | Verdict::Inconclusive { states } => *states,
        };
        total_states = total_states.saturating_add(states);
        max_states = max_states.max(states);
        match verdict {
            Verdict::Linearizable { .. } => {}
            Verdict::Violation { stuck, .. } => {
                if violations.len() < DESCRIBED_KEYS {
                    details.push(explain(h, &interner, key, &ops, &stuck));
                }
                violations.push(key);
            }
            Verdict::Inconclusive { states } => inconclusive.push((key, states)),
        }
    }
    if violations.len() > DESCRIBED_KEYS {
        let rest: Vec<String> = violations[DESCRIBED_KEYS..]
            .iter()
            .map(Uuid::to_string)
            .collect();
        details.push(format!("also not linearizable: {}", rest.join(", ")));
    }
    for (key, states) in &inconclusive {
        details.push(format!(
            "consumer {key}: INCONCLUSIVE, the search gave up after {} configurations \
             (Options::max_search_states = {}); linearizability was not established",
            count(*states),
            count(opts.max_search_states)
        ));
    }
    let ok = violations.is_empty() && inconclusive.is_empty();
    let verdict = if ok {
        "all linearizable".to_string()
    } else {
        format!(
            "{} not linearizable, {} inconclusive",
            count(violations.len()),
            count(inconclusive.len())
        )
    };
    let summary = format!(
        "{} consumers, {} projected ops (with {} final nodes' reads): {verdict}; {} search \
         states, at most {} on one consumer",
        count(n_keys),
        count(total_ops),
        h.finals.len(),
        count(total_states),
        count(max_states)
    );
    Report::new(NAME, ok, summary, details.join("\n"))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::check::testkit::*;
    use crate::history::{KeyWrite, Op, Seen};

    fn check(h: &History) -> Report {
        linearizable(h, &Options::default())
    }

    /// Two clients racing on one consumer, with refusals, unknown writes that did and did not
    /// apply, deletes, a multi-key write and a dropped capacity refusal.
    fn good() -> History {
        let (c, d, p) = (uid(1), uid(2), uid(100));
        let (a, b, x) = (val(p, "VCPU", 1), val(p, "VCPU", 2), val(p, "VCPU", 3));
        let mut h = Builder::new();
        h.write(1, (0, 10), c, None, &a, ok())
            // Concurrent with the first and refused: linearized after it.
            .write(2, (5, 15), c, None, &b, conflict())
            .read(3, (12, 14), c, seen(1, &a))
            .write(1, (20, 30), c, Some(1), &b, ok())
            // Unknown and never applied (it could have been, before the write above).
            .write(2, (22, 28), c, Some(1), &x, unknown())
            .read(3, (31, 32), c, seen(2, &b))
            // Unknown, applied after the client gave up.
            .write(2, (40, 45), c, Some(2), &x, unknown())
            .read(3, (46, 47), c, seen(2, &b))
            .read(3, (50, 51), c, seen(3, &x))
            .delete(1, (60, 61), c, ok())
            .delete(2, (62, 63), c, fail(404))
            .read(3, (62, 64), c, Seen::absent())
            .write_many(
                1,
                (70, 75),
                &[(c, None, a.clone()), (d, None, b.clone())],
                ok(),
            )
            // A capacity refusal tells nothing.
            .write(2, (76, 77), c, Some(1), &x, fail(409))
            // A concurrent read may see the old state or the new one...
            .write(1, (80, 100), d, Some(1), &x, ok())
            .read(2, (81, 82), d, seen(1, &b))
            .read(3, (83, 90), d, seen(2, &x))
            .read(2, (91, 92), d, seen(2, &x))
            .finals(&[1, 2, 3], &[(c, seen(1, &a)), (d, seen(2, &x))]);
        h.build()
    }

    #[test]
    fn passes_a_good_history() {
        let r = check(&good());
        assert!(r.ok, "{}\n{}", r.summary, r.detail);
        assert!(
            r.summary.starts_with("2 consumers, 24 projected ops"),
            "{}",
            r.summary
        );
    }

    /// Appends one op to a history (with the next id) and moves the finals' reads.
    fn with(h: &History, f: impl FnOnce(&mut Builder)) -> History {
        let mut b = Builder { h: h.clone() };
        f(&mut b);
        b.build()
    }

    fn base() -> (History, Uuid, Value, Value) {
        let (c, p) = (uid(1), uid(100));
        let (a, b) = (val(p, "VCPU", 1), val(p, "VCPU", 2));
        let mut h = Builder::new();
        h.write(1, (0, 10), c, None, &a, ok())
            .write(2, (20, 30), c, Some(1), &b, ok());
        (h.build(), c, a, b)
    }

    #[test]
    fn fails_a_stale_read() {
        // The follower-read-without-barrier bug: a read invoked after an acknowledged write
        // returns the state before it.
        let (h, c, a, _) = base();
        let h = with(&h, |b| {
            b.read(3, (40, 41), c, seen(1, &a));
        });
        let r = check(&h);
        assert!(!r.ok);
        assert!(r.summary.contains("1 not linearizable"), "{}", r.summary);
        let d = &r.detail;
        assert!(
            d.contains(&format!("consumer {c}: not linearizable")),
            "{d}"
        );
        assert!(d.contains("places 2 definite ops"), "{d}");
        assert!(d.contains("ending in state g2 {00000000/VCPU:2}"), "{d}");
        assert!(
            d.contains("#2 c3 n1 [40.000..41.000 ms] read -> g1 {00000000/VCPU:1} ok"),
            "{d}"
        );
    }

    #[test]
    fn fails_a_lost_write_seen_only_in_the_final_reads() {
        let (h, c, a, b) = base();
        let lost = with(&h, |bd| {
            bd.finals(&[1, 2, 3], &[(c, seen(1, &a))]);
        });
        let r = check(&lost);
        assert!(!r.ok);
        assert!(r.detail.contains("final n1"), "{}", r.detail);
        let kept = with(&h, |bd| {
            bd.finals(&[1, 2, 3], &[(c, seen(2, &b))]);
        });
        assert!(check(&kept).ok);
    }

    #[test]
    fn fails_a_write_acknowledged_with_a_wrong_generation() {
        let (c, p) = (uid(1), uid(100));
        let mut h = Builder::new();
        h.write(1, (0, 10), c, None, &val(p, "VCPU", 1), ok())
            .write(1, (20, 30), c, Some(5), &val(p, "VCPU", 2), ok());
        let r = check(&h.build());
        assert!(!r.ok);
        assert!(r.detail.contains("write exp=g5"), "{}", r.detail);
    }

    #[test]
    fn fails_a_write_refused_while_its_generation_matched() {
        let (c, p) = (uid(1), uid(100));
        let mut h = Builder::new();
        h.write(1, (0, 10), c, None, &val(p, "VCPU", 1), ok())
            .write(1, (20, 30), c, Some(1), &val(p, "VCPU", 2), conflict())
            .read(1, (40, 50), c, seen(1, &val(p, "VCPU", 1)));
        assert!(!check(&h.build()).ok);
    }

    #[test]
    fn fails_a_duplicated_apply() {
        // One write, but the generation advanced twice.
        let (c, p) = (uid(1), uid(100));
        let a = val(p, "VCPU", 1);
        let mut h = Builder::new();
        h.write(1, (0, 10), c, None, &a, ok())
            .read(2, (20, 21), c, seen(2, &a));
        assert!(!check(&h.build()).ok);
    }

    #[test]
    fn fails_a_new_then_old_read_inversion() {
        // Both reads overlap the write, but the second starts after the first ended.
        let (c, p) = (uid(1), uid(100));
        let a = val(p, "VCPU", 1);
        let mut h = Builder::new();
        h.write(1, (0, 100), c, None, &a, ok())
            .read(2, (10, 20), c, seen(1, &a))
            .read(3, (30, 40), c, Seen::absent());
        assert!(!check(&h.build()).ok);
    }

    #[test]
    fn an_unknown_write_explains_a_read_only_if_it_may_apply() {
        let (c, p) = (uid(1), uid(100));
        let a = val(p, "VCPU", 1);
        let history = |outcome: Outcome| {
            let mut h = Builder::new();
            h.write(1, (0, 10), c, None, &a, outcome)
                .read(2, (20, 21), c, Seen::absent())
                // Applied after the client gave up and after a read saw nothing.
                .read(2, (30, 31), c, seen(1, &a));
            h.build()
        };
        assert!(check(&history(unknown())).ok);
        assert!(
            !check(&history(ok())).ok,
            "an ok write is visible from 10 ms"
        );
        let r = check(&history(fail(500)));
        assert!(!r.ok, "a refused write never applies");
        // Not before it was invoked, either.
        let mut h = Builder::new();
        h.read(2, (0, 1), c, seen(1, &a))
            .write(1, (5, 10), c, None, &a, unknown());
        assert!(!check(&h.build()).ok);
    }

    #[test]
    fn a_multi_key_conflict_is_dropped() {
        let (c, d, p) = (uid(1), uid(2), uid(100));
        let a = val(p, "VCPU", 1);
        let mut h = Builder::new();
        h.write(1, (0, 10), c, None, &a, ok())
            // Refused, but maybe because of `d`: says nothing about `c`.
            .write_many(
                2,
                (20, 30),
                &[(c, Some(1), a.clone()), (d, None, a.clone())],
                conflict(),
            );
        assert!(check(&h.build()).ok);
    }

    /// A tiny deterministic generator (no `rand` here).
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    /// A linearizable history of `n` ops on one consumer, linearized every 10 ms, each op's
    /// window up to 25 ms either side (so about five overlap), with `unknowns` unknown
    /// writes, every other one applied; deletes make generations recur.
    fn generated(n: usize, unknowns: usize) -> History {
        let (c, p) = (uid(1), uid(100));
        let mut rng = Lcg(42);
        let mut b = Builder::new();
        let (mut gen, mut value): (Option<u64>, Value) = (None, Value::new());
        let every = n / unknowns.max(1);
        for i in 0..n {
            let at = 30 + 10 * i as u64;
            let span = (at - rng.below(25), at + rng.below(25));
            let client = (i % 7) as u32;
            let v = val(p, "VCPU", i as u64);
            let next = Some(gen.map_or(1, |g| g + 1));
            if unknowns > 0 && i % every == every / 2 {
                b.write(client, span, c, gen, &v, unknown());
                if (i / every).is_multiple_of(2) {
                    (gen, value) = (next, v);
                }
                continue;
            }
            match rng.below(10) {
                4..=6 => {
                    b.write(client, span, c, gen, &v, ok());
                    (gen, value) = (next, v);
                }
                7 => {
                    let stale = match gen {
                        Some(g) if g > 1 => Some(g - 1),
                        _ => Some(999),
                    };
                    b.write(client, span, c, stale, &v, conflict());
                }
                8 if gen.is_some() => {
                    b.delete(client, span, c, ok());
                    (gen, value) = (None, Value::new());
                }
                8 => {
                    b.delete(client, span, c, fail(404));
                }
                _ => {
                    let saw = Seen {
                        generation: gen,
                        value: value.clone(),
                    };
                    b.read(client, span, c, saw);
                }
            }
        }
        let end = Seen {
            generation: gen,
            value,
        };
        b.finals(&[1, 2, 3], &[(c, end)]);
        b.build()
    }

    #[test]
    fn is_fast_on_a_long_history_with_unknown_writes() {
        let h = generated(2_000, 20);
        let started = Instant::now();
        let r = check(&h);
        let took = started.elapsed();
        assert!(r.ok, "{}\n{}", r.summary, r.detail);
        eprintln!("2,000 ops, 20 unknown: {took:?}, {}", r.summary);
        assert!(took < Duration::from_secs(1), "took {took:?}");
    }

    #[test]
    fn is_fast_to_refute_a_long_history() {
        let mut h = generated(2_000, 20);
        // Corrupt one read near the end.
        let late = h
            .ops
            .iter_mut()
            .rev()
            .skip(100)
            .find(|op| matches!(op.kind, OpKind::ReadConsumer { .. }));
        if let Some(op) = late {
            op.kind = OpKind::ReadConsumer {
                consumer: uid(1),
                seen: Some(seen(77, &val(uid(100), "VCPU", 77))),
            };
        }
        let started = Instant::now();
        let r = check(&h);
        let took = started.elapsed();
        assert!(!r.ok);
        assert!(r.detail.contains("read -> g77"), "{}", r.detail);
        eprintln!("refuted in {took:?}: {}", r.summary);
        assert!(took < Duration::from_secs(2), "took {took:?}");
    }

    #[test]
    fn an_exhausted_budget_is_inconclusive_not_a_pass() {
        let h = generated(200, 4);
        assert!(check(&h).ok);
        let r = linearizable(
            &h,
            &Options {
                max_search_states: 10,
            },
        );
        assert!(!r.ok);
        assert!(r.summary.contains("1 inconclusive"), "{}", r.summary);
        assert!(r.detail.contains("INCONCLUSIVE"), "{}", r.detail);
    }

    /// The plain Wing–Gong search, without memo, greedy moves or symmetry: tries every order.
    fn brute(
        def: &[KeyOp],
        unk: &[KeyOp],
        done_d: &mut Vec<bool>,
        done_u: &mut Vec<bool>,
        s: State,
    ) -> bool {
        if done_d.iter().all(|d| *d) {
            return true;
        }
        let min_complete = def
            .iter()
            .zip(done_d.iter())
            .filter(|(_, d)| !**d)
            .map(|(o, _)| o.complete)
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..def.len() {
            if done_d[i] || def[i].invoke > min_complete {
                continue;
            }
            if let Some(next) = def[i].action.step(s) {
                done_d[i] = true;
                let found = brute(def, unk, done_d, done_u, next);
                done_d[i] = false;
                if found {
                    return true;
                }
            }
        }
        for i in 0..unk.len() {
            if done_u[i] || unk[i].invoke > min_complete {
                continue;
            }
            if let Some(next) = unk[i].action.step(s) {
                done_u[i] = true;
                let found = brute(def, unk, done_d, done_u, next);
                done_u[i] = false;
                if found {
                    return true;
                }
            }
        }
        false
    }

    #[test]
    fn agrees_with_a_brute_force_search_on_small_random_histories() {
        let (c, p) = (uid(1), uid(100));
        let values = [val(p, "VCPU", 1), val(p, "VCPU", 2)];
        let mut rng = Lcg(7);
        let (mut pass, mut fail_count) = (0, 0);
        for _ in 0..4_000 {
            let mut b = Builder::new();
            let n = 2 + rng.below(6);
            for _ in 0..n {
                let start = rng.below(20);
                let span = (start, start + rng.below(8));
                let gen = match rng.below(4) {
                    0 => None,
                    g => Some(g),
                };
                let v = &values[rng.below(2) as usize];
                let outcome = match rng.below(4) {
                    0 => unknown(),
                    1 => conflict(),
                    _ => ok(),
                };
                match rng.below(6) {
                    0 | 1 => b.write(1, span, c, gen, v, outcome),
                    2 => b.delete(
                        1,
                        span,
                        c,
                        if rng.below(2) == 0 {
                            fail(404)
                        } else {
                            outcome
                        },
                    ),
                    _ => b.read(
                        1,
                        span,
                        c,
                        Seen {
                            generation: gen,
                            value: if gen.is_some() {
                                v.clone()
                            } else {
                                Value::new()
                            },
                        },
                    ),
                };
            }
            let h = b.build();
            let mut interner = Interner::new();
            let ops = project(&h, &mut interner).remove(&c).unwrap_or_default();
            let ops = KeyOps::new(ops);
            let expected = brute(
                &ops.def,
                &ops.unk,
                &mut vec![false; ops.def.len()],
                &mut vec![false; ops.unk.len()],
                ABSENT,
            );
            let r = check(&h);
            assert_eq!(r.ok, expected, "{h:#?}\n{}", r.detail);
            if expected {
                pass += 1;
            } else {
                fail_count += 1;
            }
        }
        // Both verdicts were exercised.
        assert!(pass > 200 && fail_count > 200, "{pass} / {fail_count}");
    }

    #[test]
    fn handles_degenerate_input() {
        assert!(check(&History::default()).ok);
        let (c, p) = (uid(1), uid(100));
        let mut h = Builder::new();
        // Completion before invoke, maximal times and generations: no panic.
        h.write(1, (20, 10), c, None, &val(p, "VCPU", 1), ok());
        h.h.ops.push(Op {
            id: 9,
            client: 1,
            node: 1,
            invoke_ns: u64::MAX,
            complete_ns: u64::MAX,
            kind: OpKind::Write {
                writes: vec![KeyWrite {
                    consumer: c,
                    expected_generation: Some(u64::MAX),
                    value: val(p, "VCPU", 2),
                }],
            },
            outcome: ok(),
        });
        h.finals(&[1], &[(c, seen(1, &val(p, "VCPU", 1)))]);
        let r = check(&h.build());
        assert!(!r.ok);
    }
}
