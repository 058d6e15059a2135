package meta

import (
	"encoding/json"
	"fmt"
)

// schemaVersion is the "version" field of every value this package writes.
// A reader refuses other versions rather than guess at their meaning.
const schemaVersion = 1

// encode marshals v, a JSON object, with "version" as its first field.
func encode(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("meta: encode %T: %w", v, err)
	}
	if len(b) < 2 || b[0] != '{' {
		return "", fmt.Errorf("meta: encode %T: not a JSON object", v)
	}
	head := fmt.Sprintf(`{"version":%d`, schemaVersion)
	if len(b) == 2 {
		return head + "}", nil
	}
	return head + "," + string(b[1:]), nil
}

// decode unmarshals a value written by encode into v. Any failure wraps
// ErrCorrupt and names the key.
func decode(key string, b []byte, v any) error {
	var h struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, key, err)
	}
	if h.Version == nil {
		return fmt.Errorf("%w: %s: no schema version", ErrCorrupt, key)
	}
	if *h.Version != schemaVersion {
		return fmt.Errorf("%w: %s: schema version %d, this build reads %d", ErrCorrupt, key, *h.Version, schemaVersion)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, key, err)
	}
	return nil
}
