"""Jobs on the user's own devices over SSH: one device (`--on ssh://user@host[:port]`) or a fleet file
(`--fleet devices.toml`). `address` parses, `ssh` connects (host keys checked, keys from the agent or ~/.ssh),
`sync` copies inputs content-addressed, `job` runs one edgekit command there and brings back its JSON, `fleet`
runs one job on every device in parallel and merges the results."""
