/* The net-snmp headers elsed's bindings are generated from (build.rs, bindgen). */
#include <sys/select.h>
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/library/snmpusm.h>
