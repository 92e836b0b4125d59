"""`python -m komponent_registration`: run the registration service."""

from komponent_runtime.service import main

from komponent_registration.app import MIGRATIONS, wire

main("registration", MIGRATIONS, wire)
