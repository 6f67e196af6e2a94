// The live stream. EventSource sends the HttpOnly access cookie (same origin) — it cannot send
// an Authorization header, and the gateway never takes a token in the URL. `?after=seq` says
// where the page's snapshot left off; when the network drops, the browser reconnects by itself
// with Last-Event-ID and the gateway replays what was missed from the change feed.

export class Live {
  constructor({ onChange, onEnded, status }) {
    this.onChange = onChange;
    this.onEnded = onEnded;
    this.status = status;
    this.source = null;
    this.lastSeq = 0;
  }

  setState(state, text) {
    this.status.dataset.state = state;
    this.status.textContent = `Live updates: ${text}`;
  }

  open(afterSeq) {
    this.close();
    this.lastSeq = afterSeq;
    const source = new EventSource(`/api/stream?after=${encodeURIComponent(afterSeq)}`);
    this.source = source;
    this.setState('connecting', 'connecting…');
    source.onopen = () => this.setState('open', 'on');
    const seen = (e) => {
      if (e.lastEventId) this.lastSeq = Number(e.lastEventId);
    };
    source.addEventListener('ready', seen);
    source.addEventListener('change', (e) => {
      seen(e);
      this.onChange(JSON.parse(e.data));
    });
    // The server ends a stream when the token expires or the session is revoked ("end"), or
    // when the page fell too far behind ("resync"); the page decides what comes next.
    source.addEventListener('end', (e) => this.finish(JSON.parse(e.data).reason));
    source.addEventListener('resync', () => this.finish('resync'));
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        this.finish('refused'); // an HTTP error: the cookie is gone or refused
      } else {
        this.setState('connecting', 'reconnecting…');
      }
    };
  }

  finish(reason) {
    this.close();
    this.onEnded(reason);
  }

  close() {
    if (this.source) {
      this.source.close();
      this.source = null;
    }
    this.setState('closed', 'off');
  }
}
