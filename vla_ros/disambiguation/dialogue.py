"""The state of one operator's conversation with the cell, without ROS and without a clock of its own.

Pronouns ("it", "that one", "那个"), ellipsis ("again, but to the other bin", "same for the nut",
"跟刚才一样"), "the other one" and corrections all refer to what earlier turns did. Re-reading earlier
sentences would guess again what they meant; the state instead remembers what each turn *resolved*
to (action, object, place, direction), what the arm holds after it, and the question that is waiting
for an answer. Every method that depends on time takes ``now_s`` (seconds, any monotonic origin), so
the node passes its ROS clock, tests pass numbers, and the benchmark needs no clock at all.

``InstructionResolver.resolve(text, scene, history)`` accepts a :class:`DialogueState` as
``history``; plain strings still work (the benchmark's cases carry earlier sentences only), and
:meth:`DialogueState.from_history` turns such strings into a state through the resolver.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the resolver imports this module; only type checkers need the reverse
    from vla_ros.disambiguation.resolver import InstructionResolver, Resolution
    from vla_ros.disambiguation.scene import Scene

# Actions that leave something to refer back to; stop and home do not change what "it" means.
REFERRING_ACTIONS = frozenset({"pick_place", "pick", "place", "push", "move_to"})


@dataclass(frozen=True)
class DialogueTurn:
    """What one forwarded command did: the ids it acted on, in the scene's own terms."""

    text: str
    time_s: float
    action: str
    object_id: str | None = None
    target_id: str | None = None
    direction: str | None = None

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(i for i in (self.object_id, self.target_id) if i)


@dataclass(frozen=True)
class PendingQuestion:
    """The question waiting for an answer, and when it stops waiting."""

    request_id: str
    resolution: Resolution
    asked_s: float
    deadline_s: float


class DialogueState:
    """History entities, last action and its arguments, held object, pending question, corrections.

    ``max_turns`` bounds what pronouns and "again" can reach; ``memory_s`` forgets turns older than
    that (an "it" after a long pause is more likely a new topic than the part of ten minutes ago;
    ``None`` keeps them); ``clarification_timeout_s`` is how long a question waits for its answer.
    """

    def __init__(
        self,
        max_turns: int = 8,
        memory_s: float | None = None,
        clarification_timeout_s: float = 30.0,
    ) -> None:
        if max_turns < 0 or clarification_timeout_s <= 0.0 or (memory_s is not None and memory_s <= 0.0):
            raise ValueError("max_turns must be >= 0, clarification_timeout_s > 0 and memory_s > 0 or None")
        self.max_turns = max_turns
        self.memory_s = memory_s
        self.clarification_timeout_s = clarification_timeout_s
        self._turns: deque[DialogueTurn] = deque(maxlen=max_turns or None)
        self._now_s = 0.0
        self.pending: PendingQuestion | None = None
        self.held_object: str | None = None
        self.corrections = 0

    # ------------------------------------------------------------------ reading
    def turns(self, now_s: float | None = None) -> tuple[DialogueTurn, ...]:
        """Remembered turns, oldest first, without those older than ``memory_s`` at ``now_s``."""
        if self.max_turns == 0:
            return ()
        now = self._now_s if now_s is None else now_s
        if self.memory_s is None:
            return tuple(self._turns)
        return tuple(t for t in self._turns if now - t.time_s <= self.memory_s)

    @property
    def last_turn(self) -> DialogueTurn | None:
        turns = self.turns()
        return turns[-1] if turns else None

    @property
    def last_action(self) -> str | None:
        turn = self.last_turn
        return turn.action if turn else None

    def history_entities(self) -> tuple[str, ...]:
        """Every id the remembered turns acted on, most recent first, each once."""
        seen: list[str] = []
        for turn in reversed(self.turns()):
            for entity in turn.entities:
                if entity not in seen:
                    seen.append(entity)
        return tuple(seen)

    def history_texts(self) -> tuple[str, ...]:
        """The canonical sentences of the remembered turns (what the policy was told)."""
        return tuple(t.text for t in self.turns())

    # ------------------------------------------------------------------ writing
    def set_time(self, now_s: float) -> None:
        """Tell the state what time it is before resolving, so that ``memory_s`` ages old turns."""
        self._now_s = now_s

    def record(self, resolution: Resolution, now_s: float, request_id: str = "") -> None:
        """Take in what the resolver concluded for the latest input, at time ``now_s``.

        A forwarded command becomes a turn (stop and home clear the question but leave the
        references); a question becomes the pending question; a refusal clears the question."""
        self._now_s = now_s
        if resolution.status == "clarify":
            self.pending = PendingQuestion(
                request_id, resolution, now_s, now_s + self.clarification_timeout_s
            )
            return
        self.pending = None
        if resolution.status != "resolved" or resolution.action not in REFERRING_ACTIONS:
            return
        if resolution.corrects_previous and self._turns:
            # "no, the other one": the last command was the wrong one; "it" now means the new one.
            self._turns.pop()
            self.corrections += 1
        self._turns.append(
            DialogueTurn(
                text=resolution.instruction or resolution.raw_text,
                time_s=now_s,
                action=resolution.action or "",
                object_id=resolution.object_id,
                target_id=resolution.target_id,
                direction=resolution.direction,
            )
        )
        if resolution.action == "pick":
            self.held_object = resolution.object_id
        elif resolution.action in ("place", "pick_place"):
            self.held_object = None

    def expire(self, now_s: float) -> PendingQuestion | None:
        """Drop the pending question if its time is up at ``now_s``; returns it when it was dropped."""
        self._now_s = now_s
        pending = self.pending
        if pending is None or now_s < pending.deadline_s:
            return None
        self.pending = None
        return pending

    def clear_pending(self) -> PendingQuestion | None:
        """A new instruction replaces the question: the answer to the old one must not act any more."""
        pending, self.pending = self.pending, None
        return pending

    # ------------------------------------------------------------------ building
    @classmethod
    def from_history(
        cls,
        history: Iterable[str],
        scene: Scene,
        resolver: InstructionResolver,
        max_turns: int = 8,
    ) -> DialogueState:
        """A state from earlier sentences alone (the benchmark's ``history``): each is resolved in
        turn against the scene and the state built so far, as if the operator had said them."""
        state = cls(max_turns=max_turns)
        for step, text in enumerate(history):
            state.record(resolver.resolve(str(text), scene, state), now_s=float(step))
        return state
