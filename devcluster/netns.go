package devcluster

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"strings"
)

// Network namespaces (Options.Netns): every site runs in its own network
// namespace, attached by a veth pair to a bridge of the host namespace:
//
//	host: bridge dqbr<N> 10.213.<N>.1/24 (+ a blackhole route for the /24)
//	  veth ── netns duomq-<N>-idc-a    10.213.<N>.11
//	  veth ── netns duomq-<N>-idc-b    10.213.<N>.12
//	  veth ── netns duomq-<N>-witness  10.213.<N>.13
//
// The host reaches every site through the bridge (an iptables rule lets
// the bridge forward where the host's FORWARD policy drops); the blackhole route
// (a higher metric than the bridge's) keeps packets to the subnet on the
// machine even while the bridge is down. A partition is an nftables table
// inside a site's namespace that drops its traffic with the other sites'
// addresses (Supervisor.Partition); Heal deletes it. Everything is
// removed when the supervisor stops, also after a failure.

// netPrefix is the /16 the dev subnets are taken from.
const netPrefix = "10.213."

var siteHost = map[string]string{SiteA: "11", SiteB: "12", SiteWitness: "13"}

func siteIP(subnet, site string) string { return subnet + "." + siteHost[site] }

// subnetID is N of subnet 10.213.N.
func subnetID(subnet string) string { return strings.TrimPrefix(subnet, netPrefix) }

func nsName(subnet, site string) string { return "duomq-" + subnetID(subnet) + "-" + site }

func vethNames(subnet, site string) (host, peer string) {
	base := "dq" + subnetID(subnet) + site[len(site)-1:]
	return base + "h", base + "n"
}

func bridgeName(subnet string) string { return "dqbr" + subnetID(subnet) }

// NetnsAvailable says why sites cannot run in namespaces here ("" when
// they can): root and ip and nft from Debian's iproute2 and nftables.
func NetnsAvailable() string {
	if os.Geteuid() != 0 {
		return "network namespaces need root"
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " is not installed (scripts/setup.sh installs iproute2 and nftables)"
		}
	}
	return ""
}

// freeSubnet picks a 10.213.N.0/24 that no route of the host uses yet.
func freeSubnet() (string, error) {
	if why := NetnsAvailable(); why != "" {
		return "", errors.New(why)
	}
	routes, err := exec.Command("ip", "-4", "route", "show", "table", "all").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ip route: %v: %s", err, routes)
	}
	for range 64 {
		n, err := rand.Int(rand.Reader, big.NewInt(250))
		if err != nil {
			return "", err
		}
		subnet := netPrefix + fmt.Sprint(n.Int64()+1)
		if !strings.Contains(string(routes), subnet+".") {
			return subnet, nil
		}
	}
	return "", errors.New("no free 10.213.N.0/24 subnet")
}

// run runs a command, returning its output in the error.
func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// netUp creates the bridge, the namespaces and their links. On failure it
// removes what it made.
func netUp(subnet string) (err error) {
	defer func() {
		if err != nil {
			netDown(subnet)
		}
	}()
	br := bridgeName(subnet)
	steps := [][]string{
		{"ip", "route", "add", "blackhole", subnet + ".0/24", "metric", "4000"},
		{"ip", "link", "add", br, "type", "bridge"},
		{"ip", "addr", "add", subnet + ".1/24", "dev", br},
		{"ip", "link", "set", br, "up"},
	}
	for _, site := range Sites {
		ns := nsName(subnet, site)
		host, peer := vethNames(subnet, site)
		steps = append(steps,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "link", "add", host, "type", "veth", "peer", "name", peer},
			[]string{"ip", "link", "set", peer, "netns", ns},
			[]string{"ip", "link", "set", host, "master", br, "up"},
			[]string{"ip", "-n", ns, "addr", "add", siteIP(subnet, site) + "/24", "dev", peer},
			[]string{"ip", "-n", ns, "link", "set", peer, "up"},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
		)
	}
	if _, err := exec.LookPath("iptables"); err == nil {
		// A host whose FORWARD policy drops (Docker sets it so) would drop
		// bridged traffic too while br_netfilter passes it to iptables.
		steps = append(steps, append([]string{"iptables", "-I", "FORWARD", "1"}, forwardRule(br)...))
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			return err
		}
	}
	return nil
}

// forwardRule accepts forwarding between the ports of the bridge.
func forwardRule(br string) []string {
	return []string{"-i", br, "-o", br, "-j", "ACCEPT", "-m", "comment", "--comment", "duomq dev " + br}
}

// netDown removes the namespaces (their veth ends go with them), the
// bridge and the route; it goes on past errors and returns them joined.
func netDown(subnet string) error {
	var errs []error
	for _, site := range Sites {
		if err := run("ip", "netns", "del", nsName(subnet, site)); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
	}
	for _, site := range Sites {
		host, _ := vethNames(subnet, site)
		run("ip", "link", "del", host) // normally gone with its namespace
	}
	if _, err := exec.LookPath("iptables"); err == nil {
		for run(append([]string{"iptables", "-D", "FORWARD"}, forwardRule(bridgeName(subnet))...)...) == nil {
		}
	}
	if err := run("ip", "link", "del", bridgeName(subnet)); err != nil && !strings.Contains(err.Error(), "Cannot find") {
		errs = append(errs, err)
	}
	if err := run("ip", "route", "del", "blackhole", subnet+".0/24"); err != nil && !strings.Contains(err.Error(), "No such process") {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// cutTable is the nftables table of a site's partition rules.
const cutTable = "duomq_partition"

// partition drops, inside site's namespace, every packet to or from the
// addresses of the sites in from (replacing an earlier partition).
func partition(subnet, site string, from []string) error {
	if len(from) == 0 {
		return errors.New("partition: no site to cut from")
	}
	var addrs []string
	for _, f := range from {
		if _, ok := siteHost[f]; !ok || f == site {
			return fmt.Errorf("partition: unknown or same site %q", f)
		}
		addrs = append(addrs, siteIP(subnet, f))
	}
	set := "{ " + strings.Join(addrs, ", ") + " }"
	rules := fmt.Sprintf(`table inet %[1]s {
	chain in { type filter hook input priority -10; policy accept; ip saddr %[2]s drop; }
	chain out { type filter hook output priority -10; policy accept; ip daddr %[2]s drop; }
}
`, cutTable, set)
	heal(subnet, site)
	cmd := exec.Command("ip", "netns", "exec", nsName(subnet, site), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %v: %s", site, err, out)
	}
	return nil
}

// heal removes a site's partition rules (none: nothing to do).
func heal(subnet, site string) error {
	err := run("ip", "netns", "exec", nsName(subnet, site), "nft", "delete", "table", "inet", cutTable)
	if err != nil && (strings.Contains(err.Error(), "No such file") || strings.Contains(err.Error(), "does not exist")) {
		return nil
	}
	return err
}
