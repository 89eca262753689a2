module clusterledger/interop/tiles

// torchwood's Client needs Go 1.24 or later (/usr/local/go): a module of its own, apart from interop/tlog's Go 1.19.
go 1.24.0

require (
	filippo.io/torchwood v0.6.1
	golang.org/x/mod v0.24.0
)

require (
	golang.org/x/crypto v0.38.0 // indirect
	golang.org/x/sync v0.14.0 // indirect
)
