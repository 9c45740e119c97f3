"""OSC bridge: DAW in, ADM-OSC / IEM / SPAT out, and gravity-live (issue #7)."""
