"""The latched emergency stop.

Pressing the stop latches it; releasing the button does not restart the arm, and no command can:
only an explicit reset clears it, and a reset is refused while the stop is still pressed (as on an
industrial safety relay). While latched the controller sends zero twist.
"""

from __future__ import annotations


class EStop:
    """A latch fed by the e-stop signal and cleared only by :meth:`reset`."""

    def __init__(self) -> None:
        self._latched = False
        self._engaged = False
        self.trip_count = 0

    @property
    def latched(self) -> bool:
        return self._latched

    @property
    def engaged(self) -> bool:
        """The last e-stop signal: True while the stop is pressed."""
        return self._engaged

    def signal(self, engaged: bool) -> None:
        """Feed the e-stop input; True latches, False only records that the button was released."""
        self._engaged = bool(engaged)
        if self._engaged:
            if not self._latched:
                self.trip_count += 1
            self._latched = True

    def trip(self) -> None:
        """Latch without a pressed input (a software fault that must stop the arm)."""
        if not self._latched:
            self.trip_count += 1
        self._latched = True

    def reset(self) -> bool:
        """Clear the latch; refused (returns False) while the e-stop signal is still engaged."""
        if self._engaged:
            return False
        self._latched = False
        return True
