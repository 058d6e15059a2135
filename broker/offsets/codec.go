package offsets

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// fileVersion is the schema version written and accepted.
const fileVersion = 1

type fileFormat struct {
	Version int     `json:"version"`
	Offsets []Entry `json:"offsets"`
}

func encode(entries []Entry) ([]byte, error) {
	data, err := json.MarshalIndent(fileFormat{Version: fileVersion, Offsets: entries}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("offsets: encode: %w", err)
	}
	return append(data, '\n'), nil
}

// decode parses and checks a file. Unknown fields are rejected: they would
// mean a newer writer, whose data this version could silently drop.
func decode(data []byte) (map[key]int64, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f fileFormat
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrCorrupt)
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrCorrupt, f.Version, fileVersion)
	}
	out := make(map[key]int64, len(f.Offsets))
	for _, e := range f.Offsets {
		k := key{e.Group, e.Topic, e.Queue}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%w: duplicate entry %s/%s/%d", ErrCorrupt, e.Group, e.Topic, e.Queue)
		}
		out[k] = e.Offset
	}
	return out, nil
}
