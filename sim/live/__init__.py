"""Live mode: simulated hardware behind the real protocols, at a time factor (``sim.live.fleet``)."""
