package client

import "go.mau.fi/libsignal/logger"

// quietLogger discards libsignal's log lines: by default the library prints
// to stdout on every failed decryption, which would mix into a CLI's output.
type quietLogger struct{}

func (quietLogger) Debug(string, string)   {}
func (quietLogger) Info(string, string)    {}
func (quietLogger) Warning(string, string) {}
func (quietLogger) Error(string, string)   {}
func (quietLogger) Configure(string)       {}

func init() {
	var l logger.Loggable = quietLogger{}
	logger.Setup(&l)
}
