#!/bin/sh
# Provisions bosun's accounts on a shore broker run with mosquitto-shore.conf (the
# dynamic-security plugin). mosquitto_ctrl's connection options come from MOSQ_CTRL, e.g.
#   MOSQ_CTRL="-h 127.0.0.1 -p 1883 -u admin -P <admin password>"
#
#   mosquitto-dynsec.sh shore <username> <password> <SHORE_SHARED_GROUP>
#   mosquitto-dynsec.sh vessel <VESSEL_ID> <password>
#
# Each vessel gets a role of its own naming its own topics: Mosquitto 2.0.11's dynamic
# security does not substitute %u in ACL topics (tried: "vessel/%u/sync/ack" granted nothing),
# so a shared "vessel" role cannot say "your own subtree". A vessel is granted no subscription
# but its ack and catch-up requests, so it can never join the shore's shared group.
set -eu
ctrl() {
  # shellcheck disable=SC2086 # MOSQ_CTRL is a list of options
  mosquitto_ctrl ${MOSQ_CTRL:-} dynsec "$@" 2>/dev/null
}
acl() { ctrl addRoleACL "$1" "$2" "$3" allow; }

case "${1:-}" in
shore)
  user=$2 password=$3 group=$4
  ctrl createRole bosun-shore
  # A pattern never matches a "$share/..." filter: the group is granted by its literal name.
  acl bosun-shore subscribePattern 'vessel/#'
  acl bosun-shore subscribeLiteral "\$share/$group/vessel/+/sync/#"
  acl bosun-shore publishClientSend 'vessel/+/sync/ack'
  acl bosun-shore publishClientSend 'vessel/+/sync/catchup/request'
  acl bosun-shore publishClientSend 'vessel/+/down/#'
  ctrl createClient "$user" -p "$password"
  ctrl addClientRole "$user" bosun-shore
  ;;
vessel)
  id=$2 password=$3 role="vessel-$2" root="vessel/$2/sync"
  ctrl createRole "$role"
  for entity in work_orders alerts equipment crew maintenance_schedules; do
    acl "$role" publishClientSend "$root/$entity"
    acl "$role" publishClientSend "$root/catchup/$entity"
  done
  acl "$role" publishClientSend "$root/frames"
  acl "$role" publishClientSend "$root/system/status"
  acl "$role" publishClientSend "$root/conflicts"
  acl "$role" publishClientSend "vessel/$id/down/ack"
  acl "$role" publishClientSend "vessel/$id/down/catchup/request"
  acl "$role" subscribeLiteral "$root/ack"
  acl "$role" subscribeLiteral "$root/catchup/request"
  acl "$role" subscribePattern "vessel/$id/down/#"
  ctrl createClient "$id" -p "$password"
  ctrl addClientRole "$id" "$role"
  ;;
*)
  echo "usage: $0 shore <username> <password> <group> | vessel <VESSEL_ID> <password>" >&2
  exit 2
  ;;
esac
