"""`python -m komponent_catalogue`: run the catalogue service (HTTP on HTTP_PORT)."""

from komponent_runtime.service import main

from komponent_catalogue.app import MIGRATIONS, wire

main("catalogue", MIGRATIONS, wire)
