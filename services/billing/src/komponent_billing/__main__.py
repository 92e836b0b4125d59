"""`python -m komponent_billing`: one billing service process."""

from komponent_runtime.service import main

from komponent_billing.app import MIGRATIONS, wire

main("billing", MIGRATIONS, wire)
