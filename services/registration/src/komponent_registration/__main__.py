"""`python -m komponent_registration`: run the registration service."""

from komponent_runtime.service import main

from komponent_registration.app import MIGRATIONS, tune_gc, wire

tune_gc()
main("registration", MIGRATIONS, wire)
