"""Simulate a street: reports over days on a simulated clock, run through the real engine.

    simulate(reference, street, days, tickets_per_day, seed, start)  -> (business_time, command) …
    SimulationTally                  what the simulation intended, counted from its commands
    Profile, DEFAULT_PROFILE         the channel/category mix, rhythm and delay settings
"""

from dispatch.service.simulation.generator import DEFAULT_START, simulate
from dispatch.service.simulation.profile import DEFAULT_PROFILE, Profile
from dispatch.service.simulation.tally import SimulationTally

__all__ = ["DEFAULT_PROFILE", "DEFAULT_START", "Profile", "SimulationTally", "simulate"]
