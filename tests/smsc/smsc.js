#!/usr/bin/env node
// A scriptable SMSC for Trunkline's tests, built on node-smpp (the npm package `smpp`).
//
//   node tests/smsc/smsc.js [--port 0] [--control-port 0] [--system-id test] [--password secret]
//                           [--submit-latency-ms 0] [--receipts none|immediate|delayed|before_resp]
//                           [--tls-key key.pem --tls-cert cert.pem]
//
// Every option can also come from the environment (SMSC_PORT, SMSC_CONTROL_PORT, SMSC_SYSTEM_ID, ...).
// Port 0 picks a free port. When both listeners are up, one JSON line goes to stdout:
//   {"event":"ready","smpp_port":N,"control_port":M}
//
// The control channel is HTTP/JSON on 127.0.0.1:
//   GET  /pdus[?since=N&command=C]  every PDU received from clients, in arrival order
//   GET  /stats                     sessions, submit counts, submits per second
//   POST /config {...}              change behaviour (see DEFAULTS below); returns the config
//   POST /fault {status, count?, share?}   answer the next `count` submits (or a `share` of
//                                   them) with `status`; {status: 0} clears
//   POST /mo {...}                  send a deliver_sm to a receiving session, wait for its resp
//   POST /receipt {message_id,...}  send a delivery receipt for a message id
//   POST /data_sm {...}             send a data_sm, wait for the resp
//   POST /enquire_link              send enquire_link to every bound session, wait for the resps
//   POST /unbind                    send unbind to every bound session, wait for the resps
//   POST /drop                      destroy every client connection at once (no unbind)
//   POST /reset                     forget PDUs, counters, faults; restore the start-up config
'use strict';

const fs = require('fs');
const http = require('http');
const smpp = require('smpp');

// short_message and message_payload stay raw bytes: the tests check the exact octets sent and
// build the exact octets delivered, so node-smpp's text decoding/encoding filters are removed.
for (const name of Object.keys(smpp.commands)) {
    const params = smpp.commands[name].params || {};
    if (params.short_message) {
        delete params.short_message.filter;
    }
}
delete smpp.tlvs.message_payload.filter;

const ESME_ROK = 0x00;
const ESME_RINVBNDSTS = 0x04;
const ESME_RALYBND = 0x05;
const ESME_RBINDFAIL = 0x0d;
const RESPONSE_WAIT_MS = 3000;

function option(name, fallback) {
    const flag = '--' + name;
    const index = process.argv.indexOf(flag);
    if (index >= 0 && index + 1 < process.argv.length) {
        return process.argv[index + 1];
    }
    const env = 'SMSC_' + name.toUpperCase().replace(/-/g, '_');
    return process.env[env] !== undefined ? process.env[env] : fallback;
}

const DEFAULTS = {
    system_id: option('system-id', 'test'),
    password: option('password', 'secret'),
    smsc_system_id: 'TESTSMSC',
    submit_latency_ms: Number(option('submit-latency-ms', '0')),
    submit_jitter_ms: 0, // extra random 0..jitter ms per submit_sm_resp (makes resps out of order)
    reverse_batch: 0, // hold this many submit_sm_resps, then send them in reverse order (a
    //                   last partial batch waits for more submits)
    receipts: option('receipts', 'none'), // none | immediate | delayed | before_resp
    receipt_delay_ms: 200,
    receipt_stat: 'DELIVRD',
    receipt_err: '000',
    receipt_all: false, // send receipts even when registered_delivery asks for none
    answer_enquire_link: true, // false: ignore the client's enquire_link (keepalive failure)
    enquire_link_interval_ms: 0, // > 0: the SMSC sends enquire_link to bound sessions itself
    drop_after_submits: 0, // > 0: destroy the connection on receiving the Nth submit_sm from now
    reject_binds: 0, // refuse the next N binds with ESME_RBINDFAIL even with good credentials
    record: true, // false: do not keep PDUs (benchmarks)
};

let config = Object.assign({}, DEFAULTS);
let pdus = [];
let sessions = [];
let nextSessionId = 1;
let nextMessageId = 1;
let fault = {status: 0, count: 0, share: 0};
let counters = {};
let submitsPerSecond = {};
let enquireTimer = null;

function resetCounters() {
    counters = {connections: 0, binds: 0, bind_failures: 0, submits: 0, submit_errors: 0,
        receipts_sent: 0, mo_sent: 0, unbinds_received: 0, enquire_links_received: 0};
    submitsPerSecond = {};
}
resetCounters();

function bufferHex(value) {
    if (Buffer.isBuffer(value)) {
        return value.toString('hex');
    }
    return value;
}

function record(session, pdu) {
    if (!config.record) {
        return;
    }
    const entry = {
        index: pdus.length,
        at: Date.now() / 1000,
        session: session.trunklineId,
        command: pdu.command,
        command_id: pdu.command_id,
        command_status: pdu.command_status,
        sequence_number: pdu.sequence_number,
    };
    const params = (smpp.commands[pdu.command] || {}).params || {};
    for (const key of Object.keys(params)) {
        if (key in pdu) {
            entry[key] = bufferHex(pdu[key]);
        }
    }
    if (Buffer.isBuffer(pdu.short_message)) {
        entry.short_message_hex = pdu.short_message.toString('hex');
        delete entry.short_message;
        if ((pdu.esm_class & 0x40) && pdu.short_message.length > 0) {
            const udhLength = pdu.short_message[0] + 1;
            entry.udh_hex = pdu.short_message.slice(0, udhLength).toString('hex');
            entry.payload_hex = pdu.short_message.slice(udhLength).toString('hex');
        }
    }
    const tlvs = {};
    for (const key of Object.keys(pdu)) {
        if (key in smpp.tlvs && !(key in params)) {
            tlvs[key] = bufferHex(pdu[key]);
        } else if (/^\d+$/.test(key)) {
            tlvs['0x' + Number(key).toString(16).padStart(4, '0')] = bufferHex(pdu[key]);
        }
    }
    entry.tlvs = tlvs;
    pdus.push(entry);
}

function smscTimestamp(date) {
    const pad = (n) => String(n).padStart(2, '0');
    return pad(date.getUTCFullYear() % 100) + pad(date.getUTCMonth() + 1) + pad(date.getUTCDate()) +
        pad(date.getUTCHours()) + pad(date.getUTCMinutes());
}

function canReceive(session) {
    return session.bound === 'transceiver' || session.bound === 'receiver';
}

function canTransmit(session) {
    return session.bound === 'transceiver' || session.bound === 'transmitter';
}

// The session a deliver_sm should go to: the given one if it can receive, else any receiving
// session of the same account.
function receiverFor(preferred) {
    if (preferred && canReceive(preferred) && !preferred.closed) {
        return preferred;
    }
    return sessions.find((s) => canReceive(s) && !s.closed) || null;
}

// Send a request PDU and resolve with the response (or {timeout: true}).
function request(session, command, options) {
    return new Promise((resolve) => {
        let done = false;
        const timer = setTimeout(() => {
            if (!done) {
                done = true;
                resolve({timeout: true, session: session.trunklineId});
            }
        }, RESPONSE_WAIT_MS);
        const sent = session.send(new smpp.PDU(command, options), (resp) => {
            if (!done) {
                done = true;
                clearTimeout(timer);
                resolve({session: session.trunklineId, command: resp.command,
                    command_status: resp.command_status, sequence_number: resp.sequence_number});
            }
        });
        if (!sent) {
            done = true;
            clearTimeout(timer);
            resolve({error: 'not writable', session: session.trunklineId});
        }
    });
}

function receiptText(messageId, submitted, stat, err, text) {
    const now = new Date();
    return 'id:' + messageId + ' sub:001 dlvrd:' + (stat === 'DELIVRD' ? '001' : '000') +
        ' submit date:' + smscTimestamp(submitted) + ' done date:' + smscTimestamp(now) +
        ' stat:' + stat + ' err:' + err + ' text:' + text;
}

const MESSAGE_STATES = {ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6,
    UNKNOWN: 7, REJECTD: 8};

function sendReceipt(session, opts) {
    const target = receiverFor(session);
    if (!target) {
        return Promise.resolve({error: 'no receiving session'});
    }
    const stat = opts.stat || config.receipt_stat;
    const err = opts.err || config.receipt_err;
    const text = receiptText(opts.message_id, opts.submitted || new Date(), stat, err,
        (opts.text || '').slice(0, 20));
    counters.receipts_sent += 1;
    return request(target, 'deliver_sm', {
        source_addr_ton: opts.source_addr_ton || 0,
        source_addr_npi: opts.source_addr_npi || 0,
        source_addr: opts.source_addr || '',
        dest_addr_ton: opts.dest_addr_ton || 0,
        dest_addr_npi: opts.dest_addr_npi || 0,
        destination_addr: opts.destination_addr || '',
        esm_class: 0x04,
        data_coding: 0,
        short_message: Buffer.from(text, 'ascii'),
        receipted_message_id: opts.message_id,
        message_state: MESSAGE_STATES[stat] || 7,
    });
}

function hexOrEmpty(value) {
    return value ? Buffer.from(value, 'hex') : Buffer.alloc(0);
}

function sendMo(session, body) {
    const target = receiverFor(session);
    if (!target) {
        return Promise.resolve({error: 'no receiving session'});
    }
    const options = {
        source_addr_ton: body.source_addr_ton || 0,
        source_addr_npi: body.source_addr_npi || 0,
        source_addr: body.source_addr || '',
        dest_addr_ton: body.dest_addr_ton || 0,
        dest_addr_npi: body.dest_addr_npi || 0,
        destination_addr: body.destination_addr || '',
        esm_class: body.esm_class || 0,
        data_coding: body.data_coding || 0,
        short_message: hexOrEmpty(body.short_message_hex),
    };
    const tlvs = body.tlvs || {};
    for (const key of Object.keys(tlvs)) {
        options[key] = key === 'message_payload' ? hexOrEmpty(tlvs[key]) : tlvs[key];
    }
    counters.mo_sent += 1;
    return request(target, body.command || 'deliver_sm', options);
}

function answerSubmit(session, pdu) {
    const submitted = new Date();
    let status = ESME_ROK;
    if (fault.status && fault.count > 0) {
        status = fault.status;
        fault.count -= 1;
    } else if (fault.status && fault.share > 0 && Math.random() < fault.share) {
        status = fault.status;
    }
    if (status !== ESME_ROK) {
        counters.submit_errors += 1;
        return {resp: pdu.response({command_status: status}), receipt: null};
    }
    const messageId = (nextMessageId++).toString(16).padStart(8, '0');
    const wantsReceipt = config.receipts !== 'none' && (config.receipt_all || (pdu.registered_delivery & 0x03));
    const receipt = wantsReceipt ? {
        message_id: messageId, submitted,
        source_addr: pdu.destination_addr, source_addr_ton: pdu.dest_addr_ton,
        source_addr_npi: pdu.dest_addr_npi, destination_addr: pdu.source_addr,
        dest_addr_ton: pdu.source_addr_ton, dest_addr_npi: pdu.source_addr_npi,
        text: Buffer.isBuffer(pdu.short_message) ? pdu.short_message.toString('latin1') : '',
    } : null;
    return {resp: pdu.response({message_id: messageId}), receipt};
}

function onSubmit(session, pdu) {
    counters.submits += 1;
    const second = Math.floor(Date.now() / 1000);
    submitsPerSecond[second] = (submitsPerSecond[second] || 0) + 1;
    if (!canTransmit(session)) {
        session.send(pdu.response({command_status: ESME_RINVBNDSTS}));
        return;
    }
    if (config.drop_after_submits > 0) {
        config.drop_after_submits -= 1;
        if (config.drop_after_submits === 0) {
            session.destroy();
            return;
        }
    }
    const {resp, receipt} = answerSubmit(session, pdu);
    const sendResp = () => {
        if (config.reverse_batch > 1) {
            session.heldResps.push(resp);
            if (session.heldResps.length >= config.reverse_batch) {
                const held = session.heldResps.reverse();
                session.heldResps = [];
                held.forEach((r) => session.send(r));
            }
        } else {
            session.send(resp);
        }
        if (receipt && config.receipts === 'immediate') {
            sendReceipt(session, receipt);
        } else if (receipt && config.receipts === 'delayed') {
            setTimeout(() => sendReceipt(session, receipt), config.receipt_delay_ms);
        }
    };
    const delay = config.submit_latency_ms + (config.submit_jitter_ms > 0 ? Math.random() * config.submit_jitter_ms : 0);
    if (receipt && config.receipts === 'before_resp') {
        // The receipt goes out first; the resp follows once the client acknowledged it (or
        // after the configured latency, whichever is later), so it always arrives first.
        sendReceipt(session, receipt).then(() => setTimeout(sendResp, delay));
    } else if (delay > 0) {
        setTimeout(sendResp, delay);
    } else {
        sendResp();
    }
}

function onBind(session, pdu, mode) {
    if (session.bound) {
        session.send(pdu.response({command_status: ESME_RALYBND}));
        return;
    }
    const good = pdu.system_id === config.system_id && pdu.password === config.password;
    if (!good || config.reject_binds > 0) {
        if (good) {
            config.reject_binds -= 1;
        }
        counters.bind_failures += 1;
        session.send(pdu.response({command_status: ESME_RBINDFAIL}));
        return;
    }
    counters.binds += 1;
    session.bound = mode;
    session.systemId = pdu.system_id;
    session.send(pdu.response({system_id: config.smsc_system_id}));
}

function onSession(session) {
    session.trunklineId = nextSessionId++;
    session.bound = null;
    session.closed = false;
    session.heldResps = [];
    counters.connections += 1;
    sessions.push(session);
    // Gather every PDU written while handling one read into as few segments as possible.
    session.socket.prependListener('readable', () => {
        session.socket.cork();
        process.nextTick(() => session.socket.uncork());
    });
    session.on('pdu', (pdu) => record(session, pdu));
    session.on('bind_transceiver', (pdu) => onBind(session, pdu, 'transceiver'));
    session.on('bind_transmitter', (pdu) => onBind(session, pdu, 'transmitter'));
    session.on('bind_receiver', (pdu) => onBind(session, pdu, 'receiver'));
    session.on('submit_sm', (pdu) => onSubmit(session, pdu));
    session.on('enquire_link', (pdu) => {
        counters.enquire_links_received += 1;
        if (config.answer_enquire_link) {
            session.send(pdu.response());
        }
    });
    session.on('unbind', (pdu) => {
        counters.unbinds_received += 1;
        session.bound = null;
        session.send(pdu.response(), () => session.close());
    });
    session.on('unknown', (pdu) => session.send(pdu.response()));
    session.on('error', (e) => process.stderr.write('session ' + session.trunklineId + ' error: ' + e.message + '\n'));
    session.on('close', () => {
        session.closed = true;
        sessions = sessions.filter((s) => s !== session);
    });
}

function boundSessions() {
    return sessions.filter((s) => s.bound && !s.closed);
}

function setEnquireTimer() {
    if (enquireTimer) {
        clearInterval(enquireTimer);
        enquireTimer = null;
    }
    if (config.enquire_link_interval_ms > 0) {
        enquireTimer = setInterval(() => {
            boundSessions().forEach((s) => s.send(new smpp.PDU('enquire_link', {})));
        }, config.enquire_link_interval_ms);
    }
}

function stats() {
    const perSecond = Object.keys(submitsPerSecond).sort().map((k) => [Number(k), submitsPerSecond[k]]);
    return {
        sessions: sessions.map((s) => ({id: s.trunklineId, bound: s.bound, system_id: s.systemId || null})),
        counters,
        submits_per_second: perSecond,
        max_submits_per_second: perSecond.reduce((m, [, n]) => Math.max(m, n), 0),
        pdus_recorded: pdus.length,
        fault,
    };
}

function readBody(req) {
    return new Promise((resolve, reject) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            try {
                resolve(text ? JSON.parse(text) : {});
            } catch (e) {
                reject(e);
            }
        });
        req.on('error', reject);
    });
}

function sessionById(id) {
    return id ? sessions.find((s) => s.trunklineId === id) || null : null;
}

async function route(method, url, body) {
    const path = url.pathname;
    if (method === 'GET' && path === '/pdus') {
        const since = Number(url.searchParams.get('since') || '0');
        const command = url.searchParams.get('command');
        return pdus.slice(since).filter((p) => !command || p.command === command);
    }
    if (method === 'GET' && path === '/stats') {
        return stats();
    }
    if (method !== 'POST') {
        return null;
    }
    switch (path) {
    case '/config':
        for (const key of Object.keys(body)) {
            if (!(key in DEFAULTS)) {
                throw new Error('unknown config key ' + key);
            }
            config[key] = body[key];
        }
        setEnquireTimer();
        return config;
    case '/fault':
        fault = {status: body.status || 0, count: body.count || 0, share: body.share || 0};
        return fault;
    case '/mo':
        return sendMo(sessionById(body.session), body);
    case '/data_sm':
        return sendMo(sessionById(body.session), Object.assign({}, body, {command: 'data_sm'}));
    case '/receipt':
        return sendReceipt(sessionById(body.session), body);
    case '/enquire_link':
        return Promise.all(boundSessions().map((s) => request(s, 'enquire_link', {})));
    case '/unbind':
        return Promise.all(boundSessions().map((s) => {
            s.bound = null;
            return request(s, 'unbind', {});
        }));
    case '/drop': {
        const dropped = sessions.map((s) => s.trunklineId);
        sessions.forEach((s) => s.destroy());
        return {dropped};
    }
    case '/reset':
        config = Object.assign({}, DEFAULTS);
        pdus = [];
        fault = {status: 0, count: 0, share: 0};
        resetCounters();
        setEnquireTimer();
        return config;
    default:
        return null;
    }
}

// TLS (SMPP over TLS, "ssmpp") when both a PEM key and certificate are given.
const tlsKey = option('tls-key', '');
const tlsCert = option('tls-cert', '');
const serverOptions = tlsKey && tlsCert ?
    {key: fs.readFileSync(tlsKey), cert: fs.readFileSync(tlsCert)} : {};
const smscServer = smpp.createServer(serverOptions, onSession);
const control = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    let status = 200;
    let payload;
    try {
        const body = req.method === 'POST' ? await readBody(req) : {};
        payload = await route(req.method, url, body);
        if (payload === null) {
            status = 404;
            payload = {error: 'no route ' + req.method + ' ' + url.pathname};
        }
    } catch (e) {
        status = 400;
        payload = {error: String(e && e.message ? e.message : e)};
    }
    const text = JSON.stringify(payload);
    res.writeHead(status, {'content-type': 'application/json', 'content-length': Buffer.byteLength(text)});
    res.end(text);
});

const host = option('host', '127.0.0.1');
smscServer.listen(Number(option('port', '0')), host, () => {
    control.listen(Number(option('control-port', '0')), host, () => {
        process.stdout.write(JSON.stringify({event: 'ready', smpp_port: smscServer.address().port,
            control_port: control.address().port}) + '\n');
    });
});
setEnquireTimer();

for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => process.exit(0));
}
