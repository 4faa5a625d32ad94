"""Everything that speaks Asterisk: the ARI client and event stream, the AMI adapter, config."""
