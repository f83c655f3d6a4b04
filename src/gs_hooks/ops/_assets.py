"""The dashboard's inline style and script (the page loads nothing else: air-gapped ops networks).

The script does three things: reload the page every ``refresh`` seconds while "auto-refresh" is ticked and no
action is under way; remember the admin key the operator typed (for this browser tab only: ``sessionStorage``);
and run the kick and unban buttons: ask for a confirmation, ``POST`` to the admin API next to the page
(``admin/kick``, ``admin/unban``, relative: it works under any mount prefix) with the key, say what happened,
and reload to show the effect (what was done is said again after the reload).
"""

from __future__ import annotations

__all__ = ["CSS", "script"]

CSS = """
:root{--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f1f5f9;--card:#fff}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans KR",sans-serif;
color:var(--fg);background:var(--bg)}
header{display:flex;align-items:baseline;flex-wrap:wrap;gap:8px 16px;padding:14px 24px;background:#0f172a;color:#fff}
header h1{font-size:18px;margin:0;font-weight:600}
header .sub{color:#cbd5e1}
header .right{margin-left:auto;color:#cbd5e1;font-size:13px}
main{padding:16px 24px;display:grid;gap:16px;grid-template-columns:repeat(4,minmax(0,1fr))}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;min-width:0}
.card h2{font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);margin:0 0 10px}
.wide{grid-column:1/-1}.half{grid-column:span 2}
.big{font-size:34px;font-weight:650;line-height:1.1}
.muted{color:var(--muted)}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);font-variant-numeric:tabular-nums}
th{color:var(--muted);font-weight:500;font-size:12px}
td.num,th.num{text-align:right}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600}
.badge.ok{background:#dcfce7;color:#166534}.badge.warn{background:#fef9c3;color:#854d0e}
.badge.bad{background:#fee2e2;color:#991b1b}.badge.muted{background:#f1f5f9;color:#64748b}
.sw{display:inline-block;width:24px;height:0;border-top:3px solid}
.sw.three{border-top-style:dashed}
form.dates{display:flex;flex-wrap:wrap;gap:12px 28px;align-items:flex-start;margin:0 0 4px}
form.dates .item .head{display:flex;align-items:center;gap:8px}
form.dates .item .stats{color:var(--muted);font-size:12px;margin:2px 0 0 32px}
input{font:inherit;font-size:13px;padding:2px 6px;border:1px solid var(--line);border-radius:6px}
form.dates .actions{margin-left:auto;align-self:center}
button{font:inherit;padding:3px 12px;border:0;border-radius:6px;background:#2563eb;color:#fff;cursor:pointer}
button.danger{background:#dc2626}button.plain{background:#475569}
form.dates a{color:var(--muted);margin-left:6px}
.big-badge{font-size:20px;padding:2px 12px}
ul.bans{list-style:none;margin:6px 0 0;padding:0;font-size:13px}
.error{background:#fee2e2;color:#991b1b;padding:8px 12px;border-radius:8px}
.spans{display:flex;gap:6px;margin:0 0 10px}
.spans a{padding:2px 10px;border-radius:999px;border:1px solid var(--line);color:var(--fg);text-decoration:none}
.spans a.on{background:#0f172a;color:#fff;border-color:#0f172a}
.toolbar{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:0 0 8px}
.pager{display:flex;gap:12px;align-items:center;margin-top:8px;color:var(--muted)}
#action-status{min-height:1.4em;color:#0f172a}
svg .plot{fill:#fff}
svg .grid{stroke:#e2e8f0;stroke-width:1}
svg .ylab{font-size:12px;fill:#64748b;text-anchor:end}
svg .xlab{font-size:12px;fill:#64748b;text-anchor:middle}
svg .axis-title{font-size:12px;fill:#334155;text-anchor:middle}
svg .line{stroke-width:2;stroke-linejoin:round}
svg .s-one .line{stroke-width:2.5}
svg .now{stroke:#dc2626;stroke-width:1;stroke-dasharray:3 3}
svg .nowlab{font-size:11px;fill:#dc2626}
svg.spark rect{fill:#2563eb}
@media (max-width:900px){main{grid-template-columns:1fr}.half{grid-column:auto}}
"""

_JS = """
(function(){
var refresh=%d, busy=false;
var box=document.getElementById('auto');
if(refresh){setInterval(function(){if(box&&box.checked&&!busy)location.reload();},refresh*1000);}
var keyInput=document.getElementById('admin-key'), said=document.getElementById('action-status');
try{var kept=sessionStorage.getItem('gs-hooks-admin-key');if(keyInput&&kept&&!keyInput.value)keyInput.value=kept;}
catch(e){}
if(keyInput){keyInput.addEventListener('change',function(){
try{sessionStorage.setItem('gs-hooks-admin-key',keyInput.value);}catch(e){}});}
function say(text){if(said)said.textContent=text;}
try{var last=sessionStorage.getItem('gs-hooks-said');if(last){say(last);sessionStorage.removeItem('gs-hooks-said');}}
catch(e){}
function act(button){
var action=button.getAttribute('data-action'),player=button.getAttribute('data-player');
var question=action==='kick'?'Kick every live session of player '+player+'?':'Lift every ban of player '+player+'?';
if(!window.confirm(question)){say(action+' of '+player+': cancelled');return;}
var body=action==='kick'?{player:player,reason:'admin',message:'disconnected by an operator'}:{player:player};
busy=true;say(action+' of '+player+'…');
fetch('admin/'+action,{method:'POST',credentials:'omit',
headers:{'content-type':'application/json','authorization':'Bearer '+(keyInput?keyInput.value:'')},
body:JSON.stringify(body)}).then(function(r){
return r.json().then(function(j){return [r.status,j];},function(){return [r.status,{}];});
}).then(function(a){
if(a[0]===200){
var done=action==='kick'?'kicked '+a[1].kicked+' session(s) of '+player
:'lifted '+a[1].lifted.length+' ban(s) of '+player;
say(done);try{sessionStorage.setItem('gs-hooks-said',done);}catch(e){}
setTimeout(function(){location.reload();},400);
}else if(a[0]===504&&a[1].unreached){busy=false;say(action+' of '+player+' PARTIAL: '+a[1].error.message);
}else{busy=false;say(action+' of '+player+' refused ('+a[0]+'): '+((a[1].error||{}).message||''));}
}).catch(function(e){busy=false;say(action+' of '+player+' failed: '+e);});
}
document.addEventListener('click',function(ev){
var b=ev.target.closest?ev.target.closest('button[data-action]'):null;
if(b){ev.preventDefault();act(b);}
});
})();
"""


def script(refresh_s: int) -> str:
    """The page's script for an auto-refresh period (0: no auto-refresh)."""
    return _JS % refresh_s
