package meta

import (
	"strconv"
	"strings"
)

// DefaultPrefix is the root of every duomq key in etcd. The v1 in it is the
// key layout's version; the schema version of each value is inside it.
const DefaultPrefix = "/duomq/v1/"

// Keys relative to the prefix that other packages use with PutJSON,
// GetJSON and Store.Key.
const (
	// KeyControllerLeader is the prefix of the controller's election
	// (etcd concurrency.Election keys live under it).
	KeyControllerLeader = "controller/leader"
	// KeyControllerState is the controller's failover state machine.
	KeyControllerState = "controller/state"
	// KeyDrills is the prefix of drill records: drills/<id>.
	KeyDrills = "drills/"
	// KeyConsumers is the prefix of consumer presence:
	// consumers/<group>/<dc>/<proxy-id>, put by each proxy under a lease
	// while the group has live consumers there (package proxy).
	KeyConsumers = "consumers/"
	// KeyAlive is the prefix of broker liveness records alive/<dc>/<broker>
	// (type Alive), each under its broker's lease.
	KeyAlive = "alive/"
	// KeyProxies is the prefix of proxy liveness records
	// proxies/<dc>/<proxy-id>, each under its proxy's presence lease: the
	// controller counts a DC's live proxies (min-live-proxies).
	KeyProxies = "proxies/"
	// KeyMembers is the prefix of broker registrations
	// members/<dc>/<broker> (type Member): written when a broker first
	// registers and kept until an operator forgets the broker, so the
	// placement of queues does not shift when a broker dies.
	KeyMembers = "members/"
	// KeySets is the prefix of replica set leader records
	// sets/<dc>/<set> (type ReplicaSet).
	KeySets = "sets/"
	// KeyAudit is the prefix of the controller's audit log:
	// audit/<zero-padded unix nanoseconds>.
	KeyAudit = "audit/"
)

// Relative key prefixes of the typed records.
const (
	dirDCs     = "dcs/"
	dirTopics  = "topics/"
	dirGroups  = "groups/"
	dirOrdered = "ordered/"
	dirOffsets = "offsets/"
	keyTraffic = "traffic"
)

// keys builds absolute keys under one prefix.
type keys struct{ prefix string }

func (k keys) abs(rel string) string        { return k.prefix + rel }
func (k keys) dc(name string) string        { return k.prefix + dirDCs + name }
func (k keys) topic(name string) string     { return k.prefix + dirTopics + name }
func (k keys) group(name string) string     { return k.prefix + dirGroups + name }
func (k keys) ordered(topic string) string  { return k.prefix + dirOrdered + topic }
func (k keys) traffic() string              { return k.prefix + keyTraffic }
func (k keys) dir(d string) string          { return k.prefix + d }
func (k keys) groupOffsets(g string) string { return k.prefix + dirOffsets + g + "/" }

func (k keys) groupTopicOffsets(g, topic string) string {
	return k.prefix + dirOffsets + g + "/" + topic + "/"
}

func (k keys) offset(o OffsetKey) string {
	return k.groupTopicOffsets(o.Group, o.Topic) + o.DC + "/" + strconv.Itoa(o.Queue)
}

// parseOffset is the inverse of offset.
func (k keys) parseOffset(key string) (OffsetKey, bool) {
	rest, ok := strings.CutPrefix(key, k.prefix+dirOffsets)
	if !ok {
		return OffsetKey{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 {
		return OffsetKey{}, false
	}
	q, err := strconv.Atoi(parts[3])
	if err != nil {
		return OffsetKey{}, false
	}
	return OffsetKey{Group: parts[0], Topic: parts[1], DC: parts[2], Queue: q}, true
}

// parse splits an absolute key of a cached record into its directory and
// name; the traffic key has an empty name.
func (k keys) parse(key string) (dir, name string, ok bool) {
	rest, ok := strings.CutPrefix(key, k.prefix)
	if !ok {
		return "", "", false
	}
	if rest == keyTraffic {
		return keyTraffic, "", true
	}
	for _, d := range []string{dirDCs, dirTopics, dirGroups, dirOrdered} {
		if name, ok := strings.CutPrefix(rest, d); ok && name != "" && !strings.Contains(name, "/") {
			return d, name, true
		}
	}
	return "", "", false
}

// prefixEnd is the end of the key range of all keys starting with p, as
// clientv3.GetPrefixRangeEnd computes it.
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return "\x00"
}
