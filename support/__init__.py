"""Support desk: what agents do to tickets, and the timers that watch them."""
