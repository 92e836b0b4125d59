from komponent_runtime.service import main

from komponent_notifications.app import MIGRATIONS, wire

main("notifications", MIGRATIONS, wire)
