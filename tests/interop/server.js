// An independent SMSC for tests/interop.rs, built on node-smpp (npm `smpp`).
// Prints one JSON line per event on stdout: first {"event":"listening","port":N}, then
// bind, submit (with UDH parts when concatenated), enquire_link (from the ESME),
// enquire_link_resp (to the server's own enquire_link), deliver_sm_resp, unbind.
'use strict';
const smpp = require('smpp');

let nextId = 0x5f000000;
const log = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const server = smpp.createServer({ debug: false }, (session) => {
  let bound = false;
  session.on('error', (e) => log({ event: 'error', message: String(e && e.message) }));
  session.on('bind_transceiver', (pdu) => {
    if (pdu.system_id !== 'esme' || pdu.password !== 'secret') {
      log({ event: 'bind', ok: false, system_id: pdu.system_id });
      session.send(pdu.response({ command_status: smpp.ESME_RINVPASWD }));
      return;
    }
    bound = true;
    log({ event: 'bind', ok: true, system_id: pdu.system_id });
    session.send(pdu.response({ system_id: 'node-smpp' }));
    // The server's own keep-alive: the ESME must answer it.
    session.enquire_link({}, (resp) => log({ event: 'enquire_link_resp', status: resp.command_status }));
  });
  session.on('enquire_link', (pdu) => {
    log({ event: 'enquire_link' });
    session.send(pdu.response());
  });
  session.on('submit_sm', (pdu) => {
    if (!bound) {
      session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS }));
      return;
    }
    const id = (nextId++).toString(16);
    const sm = pdu.short_message || {};
    const udh = sm.udh ? sm.udh.map((b) => Buffer.from(b).toString('hex')) : [];
    const text = Buffer.isBuffer(sm.message) ? sm.message.toString('hex') : String(sm.message);
    log({ event: 'submit', id, destination_addr: pdu.destination_addr, esm_class: pdu.esm_class,
      data_coding: pdu.data_coding, udh, text, registered_delivery: pdu.registered_delivery });
    session.send(pdu.response({ message_id: id }));
    if (pdu.registered_delivery & 1) {
      setTimeout(() => {
        const receipt = `id:${id} sub:001 dlvrd:001 submit date:2611291200 done date:2611291201 stat:DELIVRD err:000 text:`;
        session.deliver_sm({
          source_addr: pdu.destination_addr,
          destination_addr: pdu.source_addr,
          esm_class: 4,
          short_message: Buffer.from(receipt, 'ascii'),
          receipted_message_id: id,
          message_state: 2,
        }, (resp) => log({ event: 'deliver_sm_resp', id, status: resp.command_status }));
      }, 10);
    }
  });
  session.on('unbind', (pdu) => {
    log({ event: 'unbind' });
    session.send(pdu.response());
    session.close();
  });
});

server.listen(0, '127.0.0.1', () => log({ event: 'listening', port: server.address().port }));
process.on('SIGTERM', () => process.exit(0));
