package server

import "github.com/duomq/duomq/api/brokerpb"

// TraceIDOf names the trace id of a failed call whose caller sent none (see
// logging.UnaryServerInterceptor): the id of the first message a send or a
// replica append carries, or the id looked up. Other calls carry no
// message id and have none.
func TraceIDOf(req any) string {
	switch r := req.(type) {
	case *brokerpb.SendRequest:
		if ms := r.GetMessages(); len(ms) > 0 {
			return ms[0].GetId()
		}
	case *brokerpb.ReplicaAppendRequest:
		if ms := r.GetMessages(); len(ms) > 0 {
			return ms[0].GetId()
		}
	case *brokerpb.LookupByIDRequest:
		return r.GetId()
	}
	return ""
}
