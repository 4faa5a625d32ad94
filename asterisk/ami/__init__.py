"""AMI adapter (panoramisk) for what ARI lacks: boot/shutdown signals, contacts, MixMonitor."""
