// Package compose holds the Compose topology of duomq (docker-compose.yml,
// config/, cluster.json, drills/: two DCs and a witness on their own
// Docker networks, joined by a `wan` network) and its tests. It has no
// code of its own.
//
// Without Docker, the tests check that cluster.json names the compose
// file's services and addresses, that stateful services keep their data
// in named volumes, the Prometheus profile's configuration (promtool) and
// the drills under drills/. TestUnplannedLossDrill is the end-to-end test:
// it builds the image (deploy/docker/build.sh), starts the topology under a
// project and subnets of its own, runs the unplanned-loss drill
// (drills/scenarios/02-primary-dc-lost.yaml; DUOMQ_COMPOSE_DRILL=FILE runs
// another) through the drills package's Docker driver, and removes every
// container, network, volume and the image. Where no Docker engine
// answers it is skipped, saying so; with CI set it fails instead.
package compose
