"""Scripted fakes of the outside world (Asterisk ARI...) for component tests."""
