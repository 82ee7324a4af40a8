#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Driving anserd with busctl alone (the acceptance script): read
# State, suspend and resume, route an app, list apps and connections,
# remove the route. $1: the bus address. Prints what busctl prints.
set -eu
bus="busctl --address=$1"
obj="org.anser.Anser1 /org/anser/Anser1 org.anser.Anser1.Manager"

echo "== state"
$bus get-property $obj State
echo "== suspend"
$bus set-property $obj Enabled b false
$bus get-property $obj State
echo "== resume"
$bus set-property $obj Enabled b true
$bus get-property $obj State
echo "== route"
$bus call $obj SetAppRoute ss 'pname(appA)' proxy
$bus get-property $obj AppRoutes
echo "== apps"
$bus --json=short get-property $obj ActiveApps
echo "== connections"
$bus --json=short call $obj ListConnections
echo "== unroute"
$bus call $obj ClearAppRoute s 'pname(appA)'
$bus get-property $obj AppRoutes
