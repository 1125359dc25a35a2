package signalstore

import (
	grouprecord "go.mau.fi/libsignal/groups/state/record"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/state/record"
)

func newSession(ser *serialize.Serializer) *record.Session {
	return record.NewSession(ser.Session, ser.State)
}

func emptySenderKey(ser *serialize.Serializer) *grouprecord.SenderKey {
	return grouprecord.NewSenderKey(ser.SenderKeyRecord, ser.SenderKeyState)
}
