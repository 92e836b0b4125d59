"""`python -m komponent_registration`: run the registration service."""

import gc

from komponent_runtime.service import main

from komponent_registration.app import MIGRATIONS, wire

# A batch creates tens of thousands of short-lived objects while the cached seat books stay; with the
# default thresholds, full collections rescan those books over and over (about 30 % of allocation time in
# a profile of a 10,000-registration rush). Collect less often, and never scan what import created.
gc.set_threshold(50_000, 20, 100)
gc.freeze()

main("registration", MIGRATIONS, wire)
